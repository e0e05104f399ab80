"""Limits on uploaded documents: size, an allow-list of types by extension and by content."""

from __future__ import annotations

import os
import zipfile

from django.utils.translation import gettext as _

from apps.core.exceptions import ApplicationError
from apps.core.files import safe_upload_name

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_NAME_CHARS = 255  # DocumentVersion.original_name

# extension -> content type served back
ALLOWED_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
}
ALLOWED_LABEL = "PDF, Word, Excel, PowerPoint, text, Markdown, CSV, PNG, JPEG"
OOXML_PREFIX = {".docx": "word/", ".xlsx": "xl/", ".pptx": "ppt/"}
TEXT_TYPES = {".txt", ".md", ".csv"}


def _looks_like(ext: str, upload) -> bool:
    upload.seek(0)
    head = upload.read(8192)
    upload.seek(0)
    if ext == ".pdf":
        return head.startswith(b"%PDF-")
    if ext == ".png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if ext in (".jpg", ".jpeg"):
        return head.startswith(b"\xff\xd8\xff")
    if ext in OOXML_PREFIX:
        if not head.startswith(b"PK\x03\x04"):
            return False
        try:
            with zipfile.ZipFile(upload) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return False
        finally:
            upload.seek(0)
        return "[Content_Types].xml" in names and any(n.startswith(OOXML_PREFIX[ext]) for n in names)
    if ext in TEXT_TYPES:
        if b"\x00" in head:
            return False
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character may be cut at the end of the sample.
            if exc.start < len(head) - 4:
                return False
        return True
    return False


def validate_upload(upload) -> tuple[str, str]:
    """Check an uploaded file; return (safe original name, content type) or raise."""
    # A long name loses the end of its stem, never its extension (the type check reads it).
    name = safe_upload_name(upload.name, max_chars=MAX_NAME_CHARS)
    ext = os.path.splitext(name)[1].lower()
    if not name or ext not in ALLOWED_TYPES:
        raise ApplicationError(
            _("This type of file is not accepted. Allowed: %(types)s.") % {"types": ALLOWED_LABEL},
            code="file_type",
        )
    if upload.size == 0:
        raise ApplicationError(_("The file is empty."), code="file_empty")
    if upload.size > MAX_UPLOAD_BYTES:
        raise ApplicationError(
            _("The file is too large (at most %(mb)d MB).") % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)},
            code="file_size",
        )
    if not _looks_like(ext, upload):
        raise ApplicationError(
            _("The file's content does not match its extension %(ext)s.") % {"ext": ext}, code="file_content"
        )
    return name, ALLOWED_TYPES[ext]

"""Fuzzed uploads (issue 11): working-group documents and grant-application attachments. Whatever the
name and the bytes, the parser answers a refusal with a code (a form error in the views) and writes
nothing, or accepts a file whose first bytes match the type it is stored as; never another
exception (a 500)."""

import io
import zipfile

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apps.core.exceptions import ApplicationError
from apps.grants import services as grant_services
from apps.grants.models import Attachment
from apps.workinggroups import services
from apps.workinggroups.models import Document, DocumentVersion
from tests.grants.factories import ApplicationFactory
from tests.workinggroups.factories import GroupMemberFactory

pytestmark = pytest.mark.django_db

MAGIC = {
    "application/pdf": b"%PDF-",
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff",
}
EXTENSIONS = [
    ".pdf",
    ".png",
    ".jpg",
    ".jpeg",
    ".txt",
    ".md",
    ".csv",
    ".docx",
    ".xlsx",
    ".pptx",
    ".exe",
    ".PDF",
    "",
]


def _zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name or "x", b"<x/>")
    return buffer.getvalue()


@st.composite
def uploads(draw):
    # Names as Django's multipart parser hands them over: it drops non-printable characters (NUL,
    # controls) and path elements (MultiPartParser.sanitize_file_name).
    stem = "".join(c for c in draw(st.text(max_size=30)) if c.isprintable()).rsplit("/")[-1].rsplit("\\")[-1]
    name = stem + draw(st.sampled_from(EXTENSIONS))
    kind = draw(st.sampled_from(["random", "magic", "zip", "broken-zip", "text"]))
    tail = draw(st.binary(max_size=300))
    if kind == "magic":
        content = draw(st.sampled_from([*MAGIC.values(), b"PK\x03\x04"])) + tail
    elif kind == "zip":
        names = draw(
            st.lists(
                st.sampled_from(["[Content_Types].xml", "word/a.xml", "xl/b.xml", "ppt/c.xml", "x"]),
                unique=True,
            )
        )
        content = _zip(names)
    elif kind == "broken-zip":
        whole = _zip(["[Content_Types].xml", "word/document.xml"])
        cut = draw(st.integers(4, len(whole)))
        content = whole[:cut] + tail
    elif kind == "text":
        content = draw(st.text(max_size=200)).encode("utf-8", "surrogatepass") + tail[:3]
    else:
        content = tail
    return name, content


def _file(name: str, content: bytes) -> SimpleUploadedFile:
    """What the multipart parser hands over; it never makes a file named "", "." or ".."."""
    try:
        return SimpleUploadedFile(name, content)
    except SuspiciousFileOperation:
        assume(False)


def _check_accepted(content_type: str, content: bytes) -> None:
    magic = MAGIC.get(content_type)
    if magic is not None:
        assert content.startswith(magic)
    elif content_type.startswith("application/vnd.openxmlformats"):
        assert content.startswith(b"PK\x03\x04")
    else:
        assert content_type.startswith("text/") and b"\x00" not in content[:2048]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(upload=uploads())
def test_fuzzed_documents_are_refused_with_a_code_or_stored_as_what_they_are(upload):
    name, content = upload
    member = GroupMemberFactory()
    before = DocumentVersion.objects.count()
    try:
        document = services.document_upload(
            group_id=member.group_id, actor=member.user, title="t", upload=_file(name, content)
        )
    except ApplicationError as error:
        assert error.code in {"file_type", "file_empty", "file_size", "file_content", "invalid_name"}, (
            error.code
        )
        assert DocumentVersion.objects.count() == before
        assert not Document.objects.filter(group=member.group).exists()
    else:
        version = document.versions.get()
        _check_accepted(version.content_type, content)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(upload=uploads())
def test_fuzzed_attachments_are_refused_with_a_code_or_stored_as_what_they_are(upload):
    name, content = upload
    application = ApplicationFactory()
    try:
        attachment = grant_services.attachment_add(
            application_id=application.pk,
            actor=application.applicant,
            uploaded_file=_file(name, content),
        )
    except ApplicationError as error:
        assert error.code in {"invalid_type", "invalid_file", "too_large", "invalid_name"}, error.code
        assert not Attachment.objects.filter(application=application).exists()
    else:
        _check_accepted(attachment.content_type, content)

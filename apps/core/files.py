"""Names of uploaded files: what the portal keeps (and shows, and gives back on download)."""

from __future__ import annotations

import unicodedata

from apps.core.text import forbidden_character

FILE_SYSTEM_NAME_BYTES = 255  # ext4, XFS, APFS, NTFS (in UTF-16 units, more generous): one name
MAX_EXTENSION_CHARS = 16  # longer than this after the last dot, it is part of the name


def _extends_previous(char: str) -> bool:
    """A character that belongs to the one before it (a mark, a variation selector, a joiner, a
    skin tone, an emoji tag): never cut between the two."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or code == 0x200D  # zero-width joiner
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (異体字セレクタ too: E0100…)
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF  # emoji skin tones
        or 0xE0020 <= code <= 0xE007F  # emoji tags
    )


def _clean(name: str) -> str:
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # browsers on Windows may send C:\…\name
    name = "".join(c for c in name if forbidden_character(c) is None)
    return name.strip().rstrip(". ")  # Windows drops trailing dots and spaces itself


def split_extension(name: str) -> tuple[str, str]:
    """(stem, extension with its dot); the extension is what follows the last dot, if short."""
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem or not extension or len(extension) > MAX_EXTENSION_CHARS or " " in extension:
        return name, ""
    return stem, "." + extension


def shorten(text: str, *, max_chars: int, max_bytes: int) -> str:
    """The longest start of ``text`` within both limits (UTF-8 bytes), cut between characters that
    stand alone (a voiced mark or an emoji's joiner never loses its base)."""
    cut, used = 0, 0
    for char in text:
        size = len(char.encode("utf-8", "surrogatepass"))
        if cut + 1 > max_chars or used + size > max_bytes:
            break
        cut += 1
        used += size
    else:
        return text
    while cut > 0 and _extends_previous(text[cut]):
        cut -= 1  # back to the base character, which goes too
    return text[:cut].rstrip(" .\u200d")


def safe_upload_name(
    name: str, *, max_chars: int, max_bytes: int = FILE_SYSTEM_NAME_BYTES, default: str = "file"
) -> str:
    """The name to keep for an uploaded file: its last path component, NFC, without control
    characters, at most ``max_chars`` characters (the column) and ``max_bytes`` UTF-8 bytes (what a
    file system accepts when the file is downloaded again), and always with its extension: a long
    name loses the end of its stem, never its type (which the type check reads)."""
    cleaned = _clean(name)
    stem, extension = split_extension(cleaned)
    if len(extension) >= max_chars or len(extension.encode()) >= max_bytes:
        stem, extension = cleaned, ""  # not a real extension: nothing to keep
    budget_chars = max_chars - len(extension)
    budget_bytes = max_bytes - len(extension.encode())
    short = shorten(stem, max_chars=budget_chars, max_bytes=budget_bytes)
    return (short or default) + extension

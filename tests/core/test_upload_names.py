"""Long file names keep their extension: a long stem is shortened (by characters for the column, by
UTF-8 bytes for a file system), never cut inside a character cluster, and the type check still sees
the real extension. For every upload of the portal: program attachments and working-group documents."""

from __future__ import annotations

import unicodedata

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from apps.core.files import FILE_SYSTEM_NAME_BYTES, safe_upload_name

LONG_JA = "令和八年度GPU計算資源利用計画書（医療画像基盤モデルの共同研究）" * 10  # 340 characters
PDF = b"%PDF-1.7\n%test\n"


def test_a_long_japanese_name_keeps_its_extension_within_both_limits():
    name = safe_upload_name(LONG_JA + ".pdf", max_chars=200)
    assert name.endswith(".pdf") and name.startswith("令和八年度GPU計算資源利用計画書")
    assert len(name) <= 200 and len(name.encode()) <= FILE_SYSTEM_NAME_BYTES
    assert LONG_JA.startswith(name.removesuffix(".pdf"))


def test_a_short_name_is_kept_as_it_is():
    assert safe_upload_name("計画書 第2版.pdf", max_chars=200) == "計画書 第2版.pdf"


def test_windows_paths_control_characters_and_decomposed_text():
    assert safe_upload_name("C:\\Users\\太郎\\計画書.pdf", max_chars=200) == "計画書.pdf"
    assert safe_upload_name("../../etc/計画\x00書\u202e.pdf", max_chars=200) == "計画書.pdf"
    decomposed = unicodedata.normalize("NFD", "ガイドライン.pdf")
    assert safe_upload_name(decomposed, max_chars=200) == "ガイドライン.pdf"
    assert safe_upload_name("", max_chars=200) == "file"
    assert safe_upload_name("報告書.", max_chars=200) == "報告書"


def test_a_cut_never_separates_a_mark_or_a_joined_emoji_from_its_base():
    # "か" + combining voiced mark that NFC cannot compose with "ㇷ" (U+31F7): stays decomposed.
    stem = "あ" * 9 + "\u31f7\u309a"
    name = safe_upload_name(stem + ".txt", max_chars=14)
    assert name == "あ" * 9 + ".txt"
    family = "👨\u200d👩\u200d👧"
    name = safe_upload_name("a" * 8 + family + ".md", max_chars=13)
    assert name in ("a" * 8 + "👨.md", "a" * 8 + ".md")
    assert not name.removesuffix(".md").endswith("\u200d")


def test_a_very_long_extension_is_not_an_extension():
    name = safe_upload_name("a." + "b" * 300, max_chars=200)
    assert len(name) == 200 and name.startswith("a.")


@given(
    st.text(min_size=1, max_size=400),
    st.sampled_from([".pdf", ".txt", ".docx", ".md", ".csv", ".jpeg"]),
    st.integers(min_value=20, max_value=255),
)
def test_any_name_fits_and_keeps_its_extension(stem, extension, max_chars):
    name = safe_upload_name(stem + extension, max_chars=max_chars)
    assert name.endswith(extension)
    assert len(name) <= max_chars and len(name.encode("utf-8", "surrogatepass")) <= FILE_SYSTEM_NAME_BYTES
    assert unicodedata.is_normalized("NFC", name)


# --- every upload of the portal -------------------------------------------------------------------


@pytest.fixture
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.mark.django_db
@pytest.mark.usefixtures("_media")
def test_a_program_attachment_with_a_long_japanese_name_is_accepted(client):
    from apps.grants import services
    from apps.grants.models import Attachment
    from tests.grants.factories import ApplicationFactory

    application = ApplicationFactory()
    upload = SimpleUploadedFile(LONG_JA + ".pdf", PDF, content_type="application/pdf")
    attachment = services.attachment_add(
        application_id=application.pk, actor=application.applicant, uploaded_file=upload
    )
    assert attachment.original_name.endswith(".pdf") and attachment.content_type == "application/pdf"
    assert len(attachment.original_name) <= Attachment._meta.get_field("original_name").max_length
    assert len(attachment.original_name.encode()) <= FILE_SYSTEM_NAME_BYTES

    # Through the page too (Django's own upload handling comes first), and back on download.
    client.force_login(application.applicant)
    response = client.post(
        reverse("grants:attachment-upload", args=[application.pk]),
        {"file": SimpleUploadedFile("第二" + LONG_JA + ".txt", "本文".encode(), content_type="text/plain")},
    )
    assert response.status_code in (200, 302)
    stored = Attachment.objects.filter(application=application).order_by("id").last()
    assert stored.original_name.startswith("第二") and stored.original_name.endswith(".txt")


@pytest.mark.django_db
@pytest.mark.usefixtures("_media")
@pytest.mark.parametrize("extension", [".pdf", ".md"])
def test_a_working_group_document_with_a_long_japanese_name_is_accepted(extension):
    from apps.workinggroups import services
    from apps.workinggroups.models import DocumentVersion
    from tests.workinggroups.factories import GroupMemberFactory

    seat = GroupMemberFactory()
    content = PDF if extension == ".pdf" else "# 議事録".encode()
    document = services.document_upload(
        group_id=seat.group_id,
        actor=seat.user,
        title="",
        upload=SimpleUploadedFile(LONG_JA + extension, content),
    )
    version = DocumentVersion.objects.get(document=document)
    assert version.original_name.endswith(extension)
    assert len(version.original_name) <= 255 and len(version.original_name.encode()) <= FILE_SYSTEM_NAME_BYTES
    assert document.title == version.original_name  # an empty title falls back to the name

    services.document_add_version(
        document_id=document.pk,
        actor=seat.user,
        upload=SimpleUploadedFile("改訂" + LONG_JA + extension, content),
    )
    assert DocumentVersion.objects.filter(
        document=document, number=2, original_name__startswith="改訂"
    ).exists()

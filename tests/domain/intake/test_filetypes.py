"""File types by their leading bytes, and the file names the bridge rebuilds from them."""

from __future__ import annotations

import pytest

from domain.intake.filetypes import safe_filename, sniff
from tests.factories import PDF, PNG

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(PDF, "application/pdf", id="pdf"),
        pytest.param(b"\xef\xbb\xbf" + PDF, "application/pdf", id="pdf-after-bom"),
        pytest.param(b" \r\n\t" + PDF, "application/pdf", id="pdf-after-whitespace"),
        pytest.param(b"\xef\xbb\xbf\n" + PDF, "application/pdf", id="pdf-after-bom-and-newline"),
        pytest.param(PNG, "image/png", id="png"),
        pytest.param(JPEG, "image/jpeg", id="jpeg"),
    ],
)
def test_types_by_their_leading_bytes(content: bytes, expected: str) -> None:
    """The magic bytes at the start; a PDF may have a BOM and whitespace before its header."""
    assert sniff(content) == expected


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"<html><!-- %PDF-1.4 --><script>alert(1)</script>", id="html-with-marker"),
        pytest.param(b"MZ\x90\x00" + b"\x00" * 60 + b"%PDF-1.4\n", id="pe-stub-with-marker"),
        pytest.param(b"\x00%PDF-1.4\n", id="nul-before-pdf"),
        pytest.param(b"\n\xef\xbb\xbf" + PDF, id="bom-after-whitespace"),
        pytest.param(b" " * 1024 + PDF, id="pdf-header-after-a-kib"),
        pytest.param(b" " + PNG, id="space-before-png"),
        pytest.param(b"\xef\xbb\xbf" + JPEG, id="bom-before-jpeg"),
        pytest.param(b"GIF89a" + PNG, id="png-later"),
        pytest.param(b"", id="empty"),
    ],
)
def test_a_signature_elsewhere_is_no_type(content: bytes) -> None:
    """A signature after other content (an HTML comment, a PE stub) makes nothing a PDF."""
    assert sniff(content) is None


@pytest.mark.parametrize(
    ("name", "media_type", "expected"),
    [
        pytest.param("Lageplan.pdf", "application/pdf", "Lageplan.pdf", id="kept"),
        pytest.param("Lageplan.html", "application/pdf", "Lageplan.pdf", id="html-named-pdf"),
        pytest.param("Foto.JPEG", "image/jpeg", "Foto.jpg", id="jpeg"),
        pytest.param("hund.pdf", "image/png", "hund.png", id="png-named-pdf"),
        pytest.param("Lageplan Müller.pdf", "application/pdf", "Lageplan Müller.pdf", id="umlaut"),
        pytest.param("Rechnung\u202efdp.exe", "application/pdf", "Rechnungfdp.pdf", id="rlo"),
        pytest.param(
            "\u2066Plan\u2069\u200e\u200f\u2067x\u2068.pdf",
            "application/pdf",
            "Planx.pdf",
            id="bidi",
        ),
        pytest.param("Plan\u200b\ufeff\u00ad.pdf", "application/pdf", "Plan.pdf", id="format"),
        pytest.param("Plan\r\nX-Evil: 1.pdf", "application/pdf", "Plan X-Evil_ 1.pdf", id="crlf"),
        pytest.param("../../etc/passwd", "application/pdf", "passwd.pdf", id="path"),
        pytest.param("C:\\Users\\Eva\\Plan.pdf", "application/pdf", "Plan.pdf", id="windows-path"),
        pytest.param("..pdf", "application/pdf", "pdf.pdf", id="leading-dots"),
        pytest.param("...", "application/pdf", "Anhang.pdf", id="only-dots"),
        pytest.param(".htaccess", "application/pdf", "htaccess.pdf", id="leading-dot"),
        pytest.param("", "image/png", "Anhang.png", id="empty"),
        pytest.param("\u202e", "image/png", "Anhang.png", id="only-control"),
        pytest.param("dir/", "application/pdf", "Anhang.pdf", id="trailing-separator"),
        pytest.param(
            "Bericht 01.02.2026", "application/pdf", "Bericht 01.02.2026.pdf", id="no-extension"
        ),
        pytest.param("Plan. . .pdf", "application/pdf", "Plan.pdf", id="trailing-dots"),
        pytest.param('a<b>c:"d|e?f*.pdf', "application/pdf", "a_b_c__d_e_f_.pdf", id="reserved"),
        pytest.param("ｐｌａｎ．ｈｔｍｌ", "application/pdf", "plan.pdf", id="fullwidth"),
    ],
)
def test_file_names_are_rebuilt(name: str, media_type: str, expected: str) -> None:
    """A safe stem of the citizen's name and the extension of the type the content is."""
    assert safe_filename(name, media_type) == expected


def test_long_names_are_cut_and_rebuilding_is_stable() -> None:
    """A name longer than the cap keeps its first characters; a rebuilt name stays as it is."""
    rebuilt = safe_filename("ä" * 300 + ".pdf", "application/pdf")
    assert rebuilt == "ä" * 100 + ".pdf"
    for name in ("Lageplan.html", "Bericht 01.02.2026", "x" * 300, "Rechnung\u202efdp.exe"):
        once = safe_filename(name, "image/png")
        assert safe_filename(once, "image/png") == once

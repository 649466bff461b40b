"""Recognise attachment types by their content, not by their name or declared type."""

from __future__ import annotations

# Only formats a clerk can open safely; each is recognised by its leading bytes.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
ALLOWED_TYPES = tuple(sorted({t for _, t in _SIGNATURES}))
ALLOWED_LABEL = "PDF, PNG, JPEG"
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}


def sniff(content: bytes) -> str | None:
    """The media type the content really is, or None when it is none of the allowed ones."""
    # PDF readers accept the header within the first KiB; a leading BOM or whitespace is common.
    head = content[:1024]
    for magic, media_type in _SIGNATURES:
        if media_type == "application/pdf":
            if magic in head:
                return media_type
        elif content.startswith(magic):
            return media_type
    return None


def normalise_declared(declared: str) -> str:
    """Lower-case a declared media type, drop parameters and map common aliases."""
    base = declared.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)

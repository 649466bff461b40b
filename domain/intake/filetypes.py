"""Recognise attachment types by their content, not by their name or declared type.

The bridge also names every file it keeps: a safe stem of the citizen's name and the
extension of the type its content is (`safe_filename`), so no name can claim another type.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class _Signature:
    """A format's magic bytes, its media type and extension, and what may come before it."""

    magic: bytes
    media_type: str
    extension: str
    # PDF readers skip a byte order mark and blank lines before the header; nothing else may.
    leading_blanks: bool = False


# Only formats a clerk can open safely; each is recognised by its leading bytes.
_SIGNATURES: tuple[_Signature, ...] = (
    _Signature(b"%PDF-", "application/pdf", ".pdf", leading_blanks=True),
    _Signature(b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    _Signature(b"\xff\xd8\xff", "image/jpeg", ".jpg"),
)
ALLOWED_TYPES = tuple(sorted({s.media_type for s in _SIGNATURES}))
ALLOWED_LABEL = "PDF, PNG, JPEG"
_EXTENSIONS = {s.media_type: s.extension for s in _SIGNATURES}
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}
_BOM = b"\xef\xbb\xbf"
_ASCII_WHITESPACE = b" \t\r\n\x0b\x0c"
# Readers look for the PDF header in the first KiB only; later it is no header.
_PDF_HEADER_WITHIN = 1024


def sniff(content: bytes) -> str | None:
    """The media type the content really is, or None when it is none of the allowed ones.

    The magic bytes must stand at offset 0; only a PDF may have a UTF-8 BOM and ASCII
    whitespace before its `%PDF-`, within the first KiB. A signature after anything else (an
    HTML comment, an executable's stub) makes no file a PDF.
    """
    blank_free = content.removeprefix(_BOM).lstrip(_ASCII_WHITESPACE)
    skipped = len(content) - len(blank_free)
    for signature in _SIGNATURES:
        if content.startswith(signature.magic):
            return signature.media_type
        if (
            signature.leading_blanks
            and skipped + len(signature.magic) <= _PDF_HEADER_WITHIN
            and blank_free.startswith(signature.magic)
        ):
            return signature.media_type
    return None


def normalise_declared(declared: str) -> str:
    """Lower-case a declared media type, drop parameters and map common aliases."""
    base = declared.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


FALLBACK_STEM = "Anhang"
MAX_STEM_CHARS = 100
# Characters Windows refuses in names; a clerk saves the file there.
_RESERVED = re.compile(r'[<>:"|?*]')
_SEPARATORS = re.compile(r"[/\\]")
# The last suffix is an extension to replace only if it looks like one: `.html`, `.exe`, not
# the year of `Bericht 01.02.2026`.
_EXTENSION = re.compile(r"\.(?=[0-9A-Za-z]{0,7}[A-Za-z])[0-9A-Za-z]{1,8}\Z")


def _visible(name: str) -> str:
    """The name without invisible characters: whitespace runs become one space, and controls,
    bidi overrides and other format characters (categories Cc, Cf, Cs, Co, Cn) go."""
    spaced = "".join(" " if c.isspace() else c for c in name)
    kept = "".join(c for c in spaced if unicodedata.category(c)[0] != "C")
    return " ".join(kept.split())


def safe_filename(name: str, media_type: str) -> str:
    """The name the bridge keeps and delivers: a safe stem of `name` plus the extension of
    `media_type` (the type `sniff` found), e.g. `Lageplan.html` holding a PDF -> `Lageplan.pdf`.

    Compatibility forms become plain ones (NFKC: a full-width dot is a dot), invisible
    characters go (see `_visible`), only the part after the last `/` or `\\` stays, characters
    Windows reserves become `_`, leading dots and trailing dots and spaces go, the stem is cut to
    MAX_STEM_CHARS characters; an empty stem is FALLBACK_STEM. Rebuilding a rebuilt name gives
    the same name.
    """
    text = _visible(unicodedata.normalize("NFKC", name))
    text = _SEPARATORS.split(text)[-1]
    text = _RESERVED.sub("_", text).lstrip(". ")
    stem = _EXTENSION.sub("", text).rstrip(". ")
    stem = stem[:MAX_STEM_CHARS].rstrip(". ") or FALLBACK_STEM
    return stem + _EXTENSIONS.get(media_type, "")

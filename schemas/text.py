"""Text folding used to compare what citizens type with the values we know."""

from __future__ import annotations

import re
import unicodedata

# German transliteration first, so "Rüde" and "Ruede" fold to the same text.
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Lower-case ``text``, transliterate umlauts and ß, and drop other accents."""
    folded = unicodedata.normalize("NFC", text).casefold()  # casefold turns ß/ẞ into ss
    folded = folded.translate(_GERMAN)
    decomposed = unicodedata.normalize("NFKD", folded)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Split folded ``text`` into words of letters and digits; punctuation separates."""
    return [word for word in _NOT_ALNUM.split(fold(text)) if word]


def compact(text: str) -> str:
    """Fold ``text`` and remove everything but letters and digits ("Am. Staff" -> "amstaff")."""
    return "".join(words(text))

"""Detection of dangerous breeds (Hessian HundeVO §2) in what a keeper types as the breed.

The breed field is free text, so detection is tolerant: case, umlauts/ß, punctuation and
spacing are folded away ("Am. Staff" = "AmStaff"), crosses are recognised ("Labrador-Rottweiler-
Mix", "Rotti Mischling", "Labrador x Rottweiler"), and small typos are accepted by a fuzzy
comparison ("Rotweiler", "Rottweiller").

Decisions:

* "Staffordshire" (also "Staff", "Stafford") on its own **is** flagged: both breeds it can mean,
  the (American) Staffordshire Terrier and the Staffordshire-Bullterrier, are listed, so either
  reading makes the dog a listed one. Both canonical names are reported; the office decides.
* "Owtscharka" on its own is **not** flagged: only the Caucasian one is listed, the
  Central-Asian and South-Russian ones are not. Likewise "Dogo" alone (Dogo Canario is not
  listed), "Terrier" and "Bulldogge" alone, and the American Bully, which is not on the §2
  list (whether a given dog counts as a cross is for the public-order office to assess).
* Names that contain a listed name are flagged (e.g. "Miniatur-Bullterrier" contains
  "Bullterrier"): a false alarm costs the office one look, a missed one a permit.

A flag only routes the application to the public-order office as well; it decides nothing.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass

from schemas.text import words

PITBULL = "Pitbull-Terrier"
AMSTAFF = "American Staffordshire Terrier"
STAFFBULL = "Staffordshire-Bullterrier"
BULLTERRIER = "Bullterrier"
AMERICAN_BULLDOG = "American Bulldog"
DOGO = "Dogo Argentino"
KANGAL = "Kangal"
OWTSCHARKA = "Kaukasischer Owtscharka"
ROTTWEILER = "Rottweiler"

#: The §2 list in the order of the ordinance; results are reported in this order.
DANGEROUS_BREEDS: tuple[str, ...] = (
    PITBULL,
    AMSTAFF,
    STAFFBULL,
    BULLTERRIER,
    AMERICAN_BULLDOG,
    DOGO,
    KANGAL,
    OWTSCHARKA,
    ROTTWEILER,
)

# Spellings in compact form (folded, letters and digits only) -> the breeds they name.
_ALIASES: dict[str, tuple[str, ...]] = {}


def _alias(breeds: tuple[str, ...], *spellings: str) -> None:
    for spelling in spellings:
        _ALIASES[spelling] = breeds


_alias(
    (PITBULL,),
    "pitbull",
    "pitbullterrier",
    "americanpitbull",
    "americanpitbullterrier",
    "amerikanischerpitbull",
    "amerikanischerpitbullterrier",
    "apbt",
)
_alias(
    (AMSTAFF,),
    "americanstaffordshireterrier",
    "americanstaffordshire",
    "americanstaffordterrier",
    "americanstaff",
    "amerikanischerstaffordshireterrier",
    "amstaff",
    "amstaffterrier",
    "staffordshireterrier",
)
_alias(
    (STAFFBULL,),
    "staffordshirebullterrier",
    "staffordbullterrier",
    "staffbullterrier",
    "staffbull",
    "staffy",
    "staffie",
    "sbt",
)
_alias((AMSTAFF, STAFFBULL), "staffordshire", "stafford", "staff")
_alias((BULLTERRIER,), "bullterrier", "englischerbullterrier", "englishbullterrier")
_alias(
    (AMERICAN_BULLDOG,),
    "americanbulldog",
    "americanbulldogge",
    "amerikanischebulldogge",
    "amerikanischerbulldog",
    "ambull",
)
_alias((DOGO,), "dogoargentino", "argentinischedogge", "argentinischerdogo")
_alias((KANGAL,), "kangal", "karabash", "karabas", "kangalhirtenhund")
_alias(
    (OWTSCHARKA,),
    "kaukasischerowtscharka",
    "kaukasischerovcharka",
    "kaukasischerowczarek",
    "kaukasischerschaeferhund",
    "kaukasischerhirtenhund",
    "kaukasenowtscharka",
    "kaukase",
    "caucasianovcharka",
    "caucasianshepherd",
    "caucasianshepherddog",
)
_alias((ROTTWEILER,), "rottweiler", "rotti", "rottie", "rotty")

# Words that join the parents of a cross; they end a breed name.
_CROSS_WORDS = frozenset(
    {
        "x",
        "mix",
        "mixed",
        "mischling",
        "mischung",
        "misch",
        "kreuzung",
        "cross",
        "hybrid",
        "und",
        "and",
        "mit",
        "with",
        "oder",
        "or",
    }
)
# Suffixes written onto a breed name ("Rottweilermischling", "Pitbullmix").
_CROSS_SUFFIXES = ("mischling", "mischung", "mixed", "mix")

#: Fuzzy matching only for spellings this long: short ones ("rotti", "staff") are too easy
#: to hit by accident, so they must match exactly.
_FUZZY_MIN_LENGTH = 6
#: A typo rarely hits the first letters; requiring them equal keeps "Bulldog" from matching
#: "ambull..." style spellings.
_FUZZY_SAME_PREFIX = 2
#: difflib ratio needed; tuned so that one or two typos pass but "American Bully" does not
#: become "American Bulldog", nor "Französische Bulldogge" an "Amerikanische Bulldogge".
_FUZZY_MIN_RATIO = 0.88
_FUZZY_MAX_LENGTH_DIFF = 2
#: Longest run of words tried as one breed name ("american pit bull terrier").
_MAX_SPAN_WORDS = 4


@dataclass(frozen=True)
class _Match:
    """A run of words ``[start, end)`` in one segment that names listed breeds."""

    start: int
    end: int
    breeds: tuple[str, ...]
    score: float
    length: int


def _segments(text: str) -> list[list[str]]:
    """Split text into word runs, one per parent breed of a cross."""
    segments: list[list[str]] = [[]]
    for word in words(text):
        suffix = next(
            (s for s in _CROSS_SUFFIXES if word.endswith(s) and len(word) - len(s) >= 3), None
        )
        if suffix is not None:
            segments[-1].append(word[: -len(suffix)])
            segments.append([])
        elif word in _CROSS_WORDS:
            segments.append([])
        else:
            segments[-1].append(word)
    return [segment for segment in segments if segment]


def _fuzzy_index() -> dict[str, tuple[tuple[str, tuple[str, ...]], ...]]:
    """The spellings long enough for fuzzy matching, by their first letters, in `_ALIASES` order.

    Built once: scanning every alias for every word run of every submission cost more than
    the rest of the dog schema's validation.
    """
    index: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for spelling, breeds in _ALIASES.items():
        if len(spelling) >= _FUZZY_MIN_LENGTH:
            index.setdefault(spelling[:_FUZZY_SAME_PREFIX], []).append((spelling, breeds))
    return {prefix: tuple(entries) for prefix, entries in index.items()}


_FUZZY_BY_PREFIX = _fuzzy_index()
#: The spellings long enough to be found inside a word, longest first (a stable sort, so
#: spellings of equal length keep their `_ALIASES` order).
_LONG_SPELLINGS: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (spelling, _ALIASES[spelling])
    for spelling in sorted(_ALIASES, key=len, reverse=True)
    if len(spelling) >= _FUZZY_MIN_LENGTH
)


def _lookup(candidate: str) -> tuple[tuple[str, ...], float] | None:
    """The breeds ``candidate`` names exactly or by a close spelling, with the match score."""
    exact = _ALIASES.get(candidate)
    if exact is not None:
        return exact, 1.0
    best: tuple[tuple[str, ...], float] | None = None
    for spelling, breeds in _FUZZY_BY_PREFIX.get(candidate[:_FUZZY_SAME_PREFIX], ()):
        if abs(len(spelling) - len(candidate)) > _FUZZY_MAX_LENGTH_DIFF:
            continue
        ratio = difflib.SequenceMatcher(None, candidate, spelling).ratio()
        if ratio >= _FUZZY_MIN_RATIO and (best is None or ratio > best[1]):
            best = (breeds, ratio)
    return best


def _substring_breeds(word: str) -> list[str]:
    """Breeds whose long spellings are written inside one word ("labradorrottweiler")."""
    found: list[str] = []
    rest = word
    # Longest first, and cut out what matched, so "staffordshirebullterrier" does not also
    # count as "bullterrier" or "staffordshire".
    for spelling, breeds in _LONG_SPELLINGS:
        if spelling in rest:
            found.extend(breeds)
            rest = rest.replace(spelling, " ")
    return found


def _segment_breeds(segment: list[str]) -> list[str]:
    """Breeds named in one run of words, longest names first, words used at most once."""
    candidates: list[_Match] = []
    for start in range(len(segment)):
        for end in range(start + 1, min(start + _MAX_SPAN_WORDS, len(segment)) + 1):
            joined = "".join(segment[start:end])
            hit = _lookup(joined)
            if hit is not None:
                candidates.append(_Match(start, end, hit[0], hit[1], len(joined)))
    candidates.sort(key=lambda match: (-match.length, -match.score))
    used = [False] * len(segment)
    found: list[str] = []
    for match in candidates:
        if any(used[match.start : match.end]):
            continue
        used[match.start : match.end] = [True] * (match.end - match.start)
        found.extend(match.breeds)
    for index, word in enumerate(segment):
        if not used[index]:
            found.extend(_substring_breeds(word))
    return found


def dangerous_breeds(text: str) -> list[str]:
    """Canonical names of HundeVO §2 breeds named in ``text``, in the ordinance's order."""
    return list(_dangerous_breeds(text or ""))


@functools.lru_cache(maxsize=1024)
def _dangerous_breeds(text: str) -> tuple[str, ...]:
    """`dangerous_breeds`, remembered per text: keepers type the same few breeds again and
    again, and the fuzzy comparison costs more than the rest of a dog's validation."""
    found: set[str] = set()
    for segment in _segments(text):
        found.update(_segment_breeds(segment))
    return tuple(breed for breed in DANGEROUS_BREEDS if breed in found)

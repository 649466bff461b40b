"""Tests for the detection of dangerous breeds (Hessian HundeVO §2) in free-text breeds."""

from __future__ import annotations

import pytest

from schemas import dangerous_breeds
from schemas.breeds import DANGEROUS_BREEDS

PIT = "Pitbull-Terrier"
AMSTAFF = "American Staffordshire Terrier"
SBT = "Staffordshire-Bullterrier"
BULL = "Bullterrier"
AMBULL = "American Bulldog"
DOGO = "Dogo Argentino"
KANGAL = "Kangal"
OWTSCHARKA = "Kaukasischer Owtscharka"
ROTT = "Rottweiler"

POSITIVE = [
    ("Rottweiler", [ROTT]),
    ("rottweiler", [ROTT]),
    ("ROTTWEILER", [ROTT]),
    ("Rottweiller", [ROTT]),
    ("Rotweiler", [ROTT]),
    ("Rottwailer", [ROTT]),
    ("Rotti Mischling", [ROTT]),
    ("Labrador-Rottweiler-Mix", [ROTT]),
    ("Rottweilermischling", [ROTT]),
    ("Labrador x Rottweiler", [ROTT]),
    ("Rottweiler/Schäferhund", [ROTT]),
    ("Labradorrottweiler", [ROTT]),
    ("AmStaff", [AMSTAFF]),
    ("Am. Staff", [AMSTAFF]),
    ("Amstaf", [AMSTAFF]),
    ("American Staffordshire Terrier", [AMSTAFF]),
    ("American-Staffordshire-Terrier-Mischling", [AMSTAFF]),
    ("Staffordshire Terrier", [AMSTAFF]),
    ("Pit Bull", [PIT]),
    ("Pitt Bull", [PIT]),
    ("Pitbull", [PIT]),
    ("Pittbull-Terrier", [PIT]),
    ("American Pit Bull Terrier", [PIT]),
    ("Boxer-Pitbull-Mischling", [PIT]),
    ("Pitbullmix", [PIT]),
    ("Staffordshire Bullterrier", [SBT]),
    ("Staffordshire-Bull-Terrier", [SBT]),
    ("Staffy", [SBT]),
    ("Bullterrier", [BULL]),
    ("Bull Terrier Mix", [BULL]),
    ("Miniatur-Bullterrier", [BULL]),
    ("American Bulldog", [AMBULL]),
    ("Amerikanische Bulldogge", [AMBULL]),
    ("Dogo Argentino", [DOGO]),
    ("Dogo Argentinio", [DOGO]),
    ("Argentinische Dogge", [DOGO]),
    ("Kangal", [KANGAL]),
    ("Karabash", [KANGAL]),
    ("Kaukasischer Owtscharka", [OWTSCHARKA]),
    ("Kaukasischer Owtcharka", [OWTSCHARKA]),
    ("Kaukasischer Schäferhund", [OWTSCHARKA]),
    ("kaukasischer schaeferhund", [OWTSCHARKA]),
    # Decision: "Staffordshire" alone can only mean listed breeds, so it is flagged with both.
    ("Staffordshire", [AMSTAFF, SBT]),
    ("Staff-Mix", [AMSTAFF, SBT]),
    # Crosses of two listed breeds report both, in the ordinance's order.
    ("Rottweiler x Dogo Argentino", [DOGO, ROTT]),
    ("Pitbull-Rottweiler-Mischling", [PIT, ROTT]),
]

NEGATIVE = [
    "Labrador",
    "Labrador Retriever",
    "Boxer",
    "Bulldogge (Englisch)",
    "Englische Bulldogge",
    "Französische Bulldogge",
    "Bulldogge",
    "Bulldog",
    "Old English Bulldog",
    "Terrier-Mix",
    "Terrier",
    "Yorkshire Terrier",
    "Jack Russell Terrier",
    "Boston Terrier",
    "Airedale Terrier",
    "Schäferhund",
    "Deutscher Schäferhund",
    "Australian Shepherd",
    "Bullmastiff",
    "Deutsche Dogge",
    "Bordeaux-Dogge",
    "Dogo Canario",
    "Owtscharka",
    "Mittelasiatischer Owtscharka",
    "Südrussischer Owtscharka",
    "Anatolischer Hirtenhund",
    "American Bully",
    "American Akita",
    "Dobermann",
    "Rhodesian Ridgeback",
    "Mischling",
    "Border-Collie-Mix",
    "Beagle",
    "",
]


def test_the_tables_are_big_enough() -> None:
    """The spelling tables cover every listed breed with enough cases."""
    assert len(POSITIVE) >= 25
    assert len(NEGATIVE) >= 15
    # Every listed breed is covered by at least one positive spelling.
    assert {breed for _, found in POSITIVE for breed in found} == set(DANGEROUS_BREEDS)


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_dangerous_spellings_are_detected(text: str, expected: list[str]) -> None:
    """Listed breeds are found despite case, spelling, typos and crosses."""
    assert dangerous_breeds(text) == expected


@pytest.mark.parametrize("text", NEGATIVE)
def test_other_breeds_are_not_flagged(text: str) -> None:
    """Unlisted breeds, even similar-looking ones, are not flagged."""
    assert dangerous_breeds(text) == []


def test_results_are_canonical_and_unique() -> None:
    """Each breed is reported once, under its canonical name."""
    assert dangerous_breeds("Rottweiler Rottweiler-Mix Rotti") == [ROTT]
    assert set(dangerous_breeds("Pitbull und Kangal")) <= set(DANGEROUS_BREEDS)

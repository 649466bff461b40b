"""What clerks read: German titles and values from `schemas.labels.describe`."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields

from schemas import SCHEMAS, describe
from schemas.blocks import Choice
from schemas.labels import field_label, flag_notes
from tests.schemas.samples import SAMPLE_OPTIONS, dog_registration_payload, traffic_order_payload


def _all_fields(schema: Schema) -> list[tuple[str, fields.Field[object]]]:
    found: list[tuple[str, fields.Field[object]]] = []
    for name, field in schema.fields.items():
        found.append((name, field))
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            found += _all_fields(inner.schema)
    return found


@pytest.mark.parametrize("key", SCHEMAS.keys())
def test_every_field_has_a_title_and_every_choice_a_label(key: str) -> None:
    """Nothing a clerk reads falls back to a key."""
    for name, field in _all_fields(SCHEMAS.get(key).schema_class()):
        assert field.metadata.get("title"), name
        if isinstance(field, Choice):
            assert set(field.labels) == set(field.choices), name
            assert all(label and label not in field.choices for label in field.labels.values())


def test_traffic_order_reads_in_german() -> None:
    """Choices by label, times local, nested blocks as title paths."""
    data = SCHEMAS.get("traffic-order@1").validate(traffic_order_payload(), SAMPLE_OPTIONS).data
    lines = dict(describe("traffic-order@1", data))
    assert lines[("Anlass",)] == "Umzug"
    assert lines[("Ort der Zone", "Straßenseite")] == "gerade Hausnummern"
    assert lines[("Zeitraum", "Beginn")] == "08.06.2026 07:00"
    assert lines[("Antragsteller", "Antragsteller ist")] == "Privatperson"
    assert lines[("Antragsteller", "Privatperson", "Geburtsdatum")] == "15.03.1986"
    assert lines[("Einwilligung in die Datenverarbeitung",)] == "Ja"
    # The service's own fields come first, the shared ones (consent, AGS) last.
    assert next(iter(lines))[0] == "Antragsteller"


def test_dog_registration_lists_and_flags() -> None:
    """Lists of objects are numbered, yes/no is Ja/Nein, the dangerous-dog flag a sentence."""
    payload = dog_registration_payload({"dog.breed": "Rottweiler"})
    result = SCHEMAS.get("dog-registration@1").validate(payload, SAMPLE_OPTIONS)
    lines = dict(describe("dog-registration@1", result.data))
    assert lines[("Anlagen", "1.", "Dateiname")] == "kaufvertrag.pdf"
    assert lines[("Hund", "Mischling")] == "Nein"
    assert lines[("Hund", "Grund der Anschaffung oder Aufnahme")] == "Kauf"
    [note] = flag_notes("dog-registration@1", result.flags)
    assert note.startswith("Rasse nach § 2 HundeVO gelistet (Rottweiler)")


def test_unknown_keys_and_schemas_are_shown_not_hidden() -> None:
    """Data the schema does not know keeps its key rather than disappearing."""
    assert describe("cat-registration@1", {"cat": {"name": "Minka", "indoor": True}}) == [
        (("cat", "name"), "Minka"),
        (("cat", "indoor"), "Ja"),
    ]
    assert (("legacy",), "x") in describe("traffic-order@1", {"legacy": "x"})


def test_field_label_names_a_problem_path_by_titles() -> None:
    """A problem's dotted path as German titles (list items by number); a path the schema does
    not know is None, so that no key a sender typed is ever shown as a label."""
    key = "dog-registration@1"
    assert field_label(key, "dog.microchip_number") == ("Hund", "Transpondernummer (Chip)")
    assert field_label(key, "attachments.0.filename") == ("Anlagen", "1.", "Dateiname")
    for unknown in ("dog.<script>", "dog.microchip_number.x", "", "attachments.x", "_schema"):
        assert field_label(key, unknown) is None, unknown
    assert field_label("cat-registration@1", "cat.name") is None

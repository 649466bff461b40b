"""Behaviour of the ``traffic-order@1`` schema."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from schemas import SCHEMAS, ValidationOptions
from schemas.options import LOCAL_TZ
from tests.schemas.samples import (
    DELETE,
    SAMPLE_NOW,
    SAMPLE_TODAY,
    attachment,
    company,
    traffic_order_payload,
    validation_errors,
)

KEY = "traffic-order@1"
OPTIONS = ValidationOptions(now=SAMPLE_NOW)
FORM = ValidationOptions(now=SAMPLE_NOW, form_input=True)
REQUIRED = [("Dieses Feld ist erforderlich.", "This field is required.")]


def errors(
    payload: dict[str, Any] | None = None, /, **options: Any
) -> dict[str, list[tuple[str, str]]]:
    """The errors for ``payload`` (default: the sample), as {path: [(German, English)]}."""
    found = validation_errors(KEY, payload or traffic_order_payload(), **options)
    return {path: [(m.de, m.en) for m in messages] for path, messages in found.items()}


def day(offset: int) -> str:
    """The ISO date ``offset`` days after the sample's today."""
    return (SAMPLE_TODAY + dt.timedelta(days=offset)).isoformat()


@pytest.mark.parametrize("kind", ["person", "company"])
def test_valid_order_passes_and_is_json_serialisable(kind: str) -> None:
    """Valid orders of a person and a company pass and survive JSON."""
    result = SCHEMAS.get(KEY).validate(traffic_order_payload(applicant_kind=kind), OPTIONS)
    assert result.flags == {}
    assert json.loads(json.dumps(result.data)) == result.data
    assert set(result.data["applicant"]) == {"kind", kind}
    # Naive times are local wall-clock times; the data carries the offset.
    assert result.data["period"]["start"] == f"{day(7)}T07:00:00+02:00"
    assert result.data["period"]["end"] == f"{day(7)}T18:00:00+02:00"


def test_valid_construction_site_with_site_plan_passes() -> None:
    """A construction site with details and site plan passes."""
    payload = traffic_order_payload(reason="construction", applicant_kind="company")
    data = SCHEMAS.get(KEY).validate(payload, OPTIONS).data
    assert data["construction"]["closure_type"] == "footpath"
    assert data["site_plan"]["filename"] == "verkehrszeichenplan.pdf"
    # A bare date means from 00:00 / until 23:59 local time.
    assert data["period"] == {
        "start": f"{day(14)}T00:00:00+02:00",
        "end": f"{day(28)}T23:59:00+02:00",
    }


def test_german_form_input_is_normalised() -> None:
    """From forms: German choices, German times and UTC times are normalised."""
    payload = traffic_order_payload(
        {
            "location.side": "gerade Hausnummern",
            "period.start": "08.06.2026 07:30",
            "period.end": "2026-06-08T10:00:00Z",
            "applicant.kind": "Privatperson",
        },
        reason="Umzug",
    )
    data = SCHEMAS.get(KEY).validate(payload, FORM).data
    assert data["reason"] == "move"
    assert data["location"]["side"] == "even"
    assert data["applicant"]["kind"] == "person"
    assert data["period"] == {
        "start": "2026-06-08T07:30:00+02:00",
        "end": "2026-06-08T12:00:00+02:00",  # converted from UTC
    }


def test_applicant_block_must_match_kind() -> None:
    """Exactly the block of the chosen applicant kind is required."""
    payload = traffic_order_payload({"applicant.company": company()})
    assert errors(payload) == {
        "applicant.company": [
            (
                "Wenn eine Privatperson den Antrag stellt, bitte keine Firmenangaben machen.",
                "When a private person applies, please leave out the company details.",
            )
        ]
    }
    payload = traffic_order_payload({"applicant.kind": "company"})
    assert errors(payload) == {
        "applicant.company": [
            (
                "Bitte machen Sie die Angaben zur antragstellenden Firma.",
                "Please provide the details of the applying company.",
            )
        ],
        "applicant.person": [
            (
                "Wenn eine Firma den Antrag stellt, bitte keine Angaben zu einer Privatperson "
                "machen.",
                "When a company applies, please leave out the details of a private person.",
            )
        ],
    }
    payload = traffic_order_payload({"applicant.person": DELETE})
    assert list(errors(payload)) == ["applicant.person"]
    # In a form, a hidden, blank block of the other kind is no problem; JSON must leave it out.
    payload = traffic_order_payload({"applicant.company": {"name": "", "address": {}}})
    assert errors(payload, form_input=True) == {}
    assert "applicant.company" in errors(payload)


def test_reason_and_side_must_be_known() -> None:
    """Unknown reasons and sides are rejected with the allowed values."""
    found = errors(traffic_order_payload({"location.side": "oben"}, reason="party"))
    assert set(found) == {"reason", "location.side"}
    assert found["reason"][0][0] == (
        "Ungültige Auswahl. Erlaubt sind: move, delivery, construction, container, crane, "
        "scaffold, event."
    )


def test_location_postal_code_has_five_digits() -> None:
    """The zone is in Germany: five-digit postal code."""
    assert errors(traffic_order_payload({"location.postal_code": "6126"})) == {
        "location.postal_code": [
            (
                "Postleitzahl muss aus fünf Ziffern bestehen.",
                "The postal code must consist of five digits.",
            )
        ]
    }


def test_start_in_the_past_has_its_own_message() -> None:
    """A start in the past is told as such, with the earliest possible start."""
    payload = traffic_order_payload({"period.start": day(-1), "period.end": day(1)})
    assert errors(payload) == {
        "period.start": [
            (
                "Der Beginn liegt in der Vergangenheit. "
                "Frühestmöglicher Beginn: 04.06.2026, 12:00 Uhr.",
                "The start lies in the past. "
                "Earliest possible start: 04.06.2026, 12:00 (German time).",
            )
        ]
    }


def too_soon(hours: int, earliest: str) -> list[tuple[str, str]]:
    """The lead-time message for ``hours`` naming the ``earliest`` start (TT.MM.JJJJ, HH:MM)."""
    return [
        (
            f"Der Beginn muss mindestens {hours} Stunden nach dem Eingang des Antrags liegen, "
            f"damit die Schilder rechtzeitig stehen. Frühestmöglicher Beginn: {earliest} Uhr.",
            f"The start must be at least {hours} hours after the application arrives, so that "
            f"the signs can be put up in time. Earliest possible start: {earliest} (German time).",
        )
    ]


@pytest.mark.parametrize(
    "start",
    [
        "2026-06-04T06:00",  # 66 hours ahead: the same calendar day as the earliest start
        "2026-06-04T11:59",
        "2026-06-04T09:59:59Z",
        "2026-06-04",  # a bare date means 00:00 local time
        "2026-06-01T18:00",
    ],
)
def test_start_needs_72_hours_of_lead_time(start: str) -> None:
    """Signs must stand 72 hours ahead: the start is compared as an instant, not a day."""
    payload = traffic_order_payload({"period.start": start, "period.end": day(10)})
    assert errors(payload) == {"period.start": too_soon(72, "04.06.2026, 12:00")}


@pytest.mark.parametrize(
    "start", ["2026-06-04T12:00", "2026-06-04T10:00:00Z", "2026-06-04T12:00:00+02:00", day(4)]
)
def test_start_exactly_72_hours_ahead_or_later_passes(start: str) -> None:
    """The earliest instant itself is allowed, in any notation."""
    assert errors(traffic_order_payload({"period.start": start, "period.end": day(10)})) == {}


def test_lead_time_comes_from_the_options_and_rounds_up_to_the_minute() -> None:
    """lead_hours is configurable; the earliest start is the next full minute."""
    payload = traffic_order_payload({"period.start": "2026-06-04T12:00", "period.end": day(10)})
    assert errors(payload, lead_hours=96) == {"period.start": too_soon(96, "05.06.2026, 12:00")}
    late = dt.datetime(2026, 6, 1, 12, 0, 30, tzinfo=LOCAL_TZ)
    assert errors(payload, now=late) == {"period.start": too_soon(72, "04.06.2026, 12:01")}
    later = traffic_order_payload({"period.start": "2026-06-04T12:01", "period.end": day(10)})
    assert errors(later, now=late) == {}


def test_bare_date_means_the_start_of_that_day_in_hesse() -> None:
    """At 23:00 on 1 June, the 4th (00:00) is only 49 hours away; the 5th is fine."""
    late_evening = dt.datetime(2026, 6, 1, 23, 0, tzinfo=LOCAL_TZ)
    payload = traffic_order_payload({"period.start": "2026-06-04", "period.end": day(10)})
    assert errors(payload, now=late_evening) == {"period.start": too_soon(72, "04.06.2026, 23:00")}
    payload = traffic_order_payload({"period.start": "2026-06-05", "period.end": day(10)})
    assert errors(payload, now=late_evening) == {}


def test_lead_time_across_the_switch_to_summer_time() -> None:
    """28 March 2027 has 23 hours: 72 hours after Friday 12:00 CET is Monday 13:00 CEST."""
    now = dt.datetime(2027, 3, 26, 12, 0, tzinfo=LOCAL_TZ)
    end = "2027-04-10"
    refused = traffic_order_payload({"period.start": "2027-03-29T12:30", "period.end": end})
    assert errors(refused, now=now) == {"period.start": too_soon(72, "29.03.2027, 13:00")}
    allowed = traffic_order_payload({"period.start": "2027-03-29T13:00", "period.end": end})
    assert errors(allowed, now=now) == {}


def test_lead_time_across_the_switch_to_winter_time() -> None:
    """25 October 2026 has 25 hours: 72 hours after Friday 12:00 CEST is Monday 11:00 CET."""
    now = dt.datetime(2026, 10, 23, 12, 0, tzinfo=LOCAL_TZ)
    end = "2026-11-10"
    allowed = traffic_order_payload({"period.start": "2026-10-26T11:00", "period.end": end})
    assert errors(allowed, now=now) == {}
    refused = traffic_order_payload({"period.start": "2026-10-26T10:59", "period.end": end})
    assert errors(refused, now=now) == {"period.start": too_soon(72, "26.10.2026, 11:00")}


def test_end_must_be_after_start() -> None:
    """The end must follow the start, reported even with other errors."""
    payload = traffic_order_payload(
        {"period.start": f"{day(7)}T10:00", "period.end": f"{day(7)}T09:00"}
    )
    expected = [("Das Ende muss nach dem Beginn liegen.", "The end must be after the start.")]
    assert errors(payload) == {"period.end": expected}
    # Reported together with a lead-time problem of the start.
    payload = traffic_order_payload({"period.start": day(1), "period.end": day(-2)})
    assert set(errors(payload)) == {"period.start", "period.end"}


def test_invalid_points_in_time() -> None:
    """Unparseable times are rejected."""
    payload = traffic_order_payload({"period.start": "morgen", "period.end": "2026-13-01"})
    found = errors(payload)
    assert set(found) == {"period.start", "period.end"}
    assert found["period.end"][0][1].startswith("Please enter a valid point in time")


@pytest.mark.parametrize(("length", "ok"), [(4, False), (5, True), (200, True), (201, False)])
def test_zone_length_bounds(length: int, ok: bool) -> None:
    """The zone length bounds are inclusive."""
    found = errors(traffic_order_payload(zone_length_m=length))
    if ok:
        assert found == {}
    else:
        assert found == {
            "zone_length_m": [
                (
                    "Die Länge der Zone muss zwischen 5 und 200 Metern liegen.",
                    "The zone must be between 5 and 200 metres long.",
                )
            ]
        }


def test_zone_length_bounds_come_from_the_options() -> None:
    """The bounds come from the options."""
    payload = traffic_order_payload(zone_length_m=40)
    found = errors(payload, min_zone_m=10, max_zone_m=30)
    assert found["zone_length_m"][0][0] == (
        "Die Länge der Zone muss zwischen 10 und 30 Metern liegen."
    )


def test_vehicles_at_least_one() -> None:
    """The optional vehicle count is at least one."""
    assert errors(traffic_order_payload(vehicles=0)) == {
        "vehicles": [
            (
                "Die Anzahl der Fahrzeuge muss mindestens 1 sein.",
                "The number of vehicles must be at least 1.",
            )
        ]
    }
    assert errors(traffic_order_payload(vehicles=DELETE)) == {}


def test_construction_site_needs_details_and_site_plan() -> None:
    """A construction site needs details and a site plan."""
    payload = traffic_order_payload(reason="construction", construction=DELETE, site_plan=DELETE)
    assert errors(payload) == {
        "construction": [
            (
                "Bei einer Baustelle sind Angaben zur Baustelle erforderlich "
                "(Art der Sperrung, Firma, verantwortliche Person).",
                "For a construction site, the construction details are required "
                "(type of closure, firm, responsible person).",
            )
        ],
        "site_plan": [
            (
                "Für eine Baustelle ist ein Lageplan (Verkehrszeichenplan) als Anlage "
                "erforderlich.",
                "For a construction site, a site plan (traffic sign plan) must be attached.",
            )
        ],
    }


def test_construction_details_are_checked_field_by_field() -> None:
    """Errors inside the construction block land on its fields."""
    payload = traffic_order_payload(
        {
            "construction.firm": DELETE,
            "construction.closure_type": "tunnel",
            "construction.responsible_person.phone": "12",
            "site_plan.sha256": "xyz",
        },
        reason="construction",
    )
    found = errors(payload)
    assert set(found) == {
        "construction.firm",
        "construction.closure_type",
        "construction.responsible_person.phone",
        "site_plan.sha256",
    }
    assert found["construction.firm"] == REQUIRED


def test_construction_details_only_for_construction() -> None:
    """Construction details belong to construction sites only."""
    payload = traffic_order_payload(
        construction={"closure_type": "footpath", "firm": "X", "responsible_person": {}}
    )
    found = errors(payload)
    assert found["construction"] == [
        (
            "Angaben zur Baustelle sind nur beim Anlass „Baustelle“ möglich.",
            "Construction details are only possible when the reason is a construction site.",
        )
    ]
    # A site plan is welcome for any reason (e.g. a sketch for a move).
    assert errors(traffic_order_payload(site_plan=attachment("skizze.pdf"))) == {}


def test_all_failing_fields_are_reported_at_once() -> None:
    """Every failing field is reported in one answer."""
    payload = traffic_order_payload(
        {
            "location.side": DELETE,
            "period.start": day(-3),
            "period.end": day(-4),
            "applicant.person.contact.email": "erika@",
        },
        reason="construction",
        construction=DELETE,
        site_plan=DELETE,
        privacy_consent=DELETE,
        zone_length_m=1,
        municipality_ags="643407",
        attachments=[attachment(size=0)],
    )
    assert set(errors(payload)) == {
        "construction",
        "site_plan",
        "privacy_consent",
        "zone_length_m",
        "municipality_ags",
        "applicant.person.contact.email",
        "location.side",
        "period.start",
        "period.end",
        "attachments.0.size",
    }

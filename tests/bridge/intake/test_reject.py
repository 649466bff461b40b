"""Rejected webhook calls: the right problem (every failing field, in German) and nothing stored."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, inspect

from bridge import create_app
from domain.settings import Settings
from schemas.traffic_order import earliest_start
from store.engine import Store
from tests.conftest import base_environ, snapshot
from tests.factories import ELF, PDF, PNG, as_json, dog, flatten, today, traffic
from tests.schemas.samples import DELETE, company
from tests.webhook_support import (
    FORM,
    JSON,
    FilePart,
    assert_problem,
    form_body,
    multipart_body,
    post,
    post_chunked,
    secret_headers,
    signature_headers,
)

DOG = "dog-registration"
TRAFFIC = "traffic-order"
MULTIPART_BOUNDARY = "multipart/form-data; boundary=b0undary"
OTHER_WHSEC = "whsec_dGhpcyBpcyBub3QgdGhlIHJpZ2h0IGtleSE="

Body = tuple[bytes, str | None]
Errors = tuple[tuple[str, str], ...]

# German messages a citizen reads, exactly as the service must send them.
REQUIRED = "Dieses Feld ist erforderlich."
CONSENT = "Die Einwilligung in die Datenverarbeitung ist erforderlich."
CHIP = "Die Transpondernummer muss aus genau 15 Ziffern bestehen."
IN_FUTURE = "Das Datum darf nicht in der Zukunft liegen."
BAD_DATE = "Bitte geben Sie ein gültiges Datum ein (TT.MM.JJJJ oder JJJJ-MM-TT)."
NOT_MEMBER = "Diese Gemeinde nimmt an diesem Online-Dienst nicht teil."
SITE_PLAN = "Für eine Baustelle ist ein Lageplan (Verkehrszeichenplan) als Anlage erforderlich."
BAD_FILE_TYPE = "Dieser Dateityp ist nicht erlaubt; erlaubt sind PDF, PNG, JPEG."
MALFORMED = "Die Anfrage ist fehlerhaft aufgebaut."
NOT_UTF8 = "Der Text ist nicht gültig in utf-8 kodiert."
SUPPORTED = "application/x-www-form-urlencoded, multipart/form-data, application/json"
NOT_A_FILE = (
    "Eine Anlage muss als Datei mitgeschickt werden; Angaben zu einer Datei ohne ihren Inhalt "
    "werden nicht angenommen."
)
DOTTED_TOO_DEEP = "Ein Feldname mit Punkten ist tiefer als 32 Ebenen verschachtelt."
# Not PDFs, though `%PDF-` is in their first KiB: a page with a script, a Windows executable.
HTML_WITH_PDF_MARKER = b"<html><!-- %PDF-1.4 --><script>alert(document.cookie)</script></html>"
PE_WITH_PDF_MARKER = b"MZ\x90\x00\x03" + b"\x00" * 59 + b"PE\x00\x00%PDF-1.4\n"
# What a sender could claim about a file it never sent (the PDF's real size and hash).
FILE_DETAILS = {
    "filename": "lageplan.pdf",
    "content_type": "application/pdf",
    "size": len(PDF),
    "sha256": hashlib.sha256(PDF).hexdigest(),
}


def _dog_form(changes: dict[str, object] | None = None, **overrides: object) -> Callable[[], Body]:
    return lambda: (form_body(dog(changes, **overrides)), FORM)


def _dog_json(changes: dict[str, object] | None = None, **overrides: object) -> Callable[[], Body]:
    return lambda: (as_json(dog(changes, **overrides)), JSON)


def _traffic_form(changes: dict[str, object]) -> Callable[[], Body]:
    return lambda: (form_body(traffic(changes)), FORM)


def _construction(
    files: tuple[FilePart, ...], changes: dict[str, object] | None = None
) -> Callable[[], Body]:
    def build() -> Body:
        return multipart_body(flatten(traffic(changes, reason="construction")), files)

    return build


def _plan(content: bytes, content_type: str = "application/pdf") -> FilePart:
    return FilePart("site_plan", "lageplan.pdf", content_type, content)


def _period(start: dt.datetime, end: dt.datetime) -> dict[str, object]:
    return {"period.start": start.isoformat(), "period.end": end.isoformat()}


def _at(days: int, hour: int) -> dt.datetime:
    return dt.datetime.combine(today() + dt.timedelta(days=days), dt.time(hour, 0))


def _raw(body: bytes, content_type: str | None) -> Callable[[], Body]:
    return lambda: (body, content_type)


def _deep_json() -> Body:
    nested: dict[str, object] = {"leaf": 1}
    for _ in range(40):
        nested = {"level": nested}
    payload = dog()
    payload["dog"]["notes"] = nested
    return as_json(payload), JSON


def _json_of_many_keys() -> Body:
    # Each key is a node: 501 keys under one object, well under the size and depth limits.
    payload = dog()
    payload["dog"]["notes"] = {f"k{i}": 1 for i in range(501)}
    return as_json(payload), JSON


def _too_many_multipart_parts() -> Body:
    return multipart_body([(f"field{i}", "x") for i in range(501)])


def _earliest_start() -> str:
    """The earliest start the service names now: 72 hours ahead, up to the full minute."""
    return earliest_start(dt.datetime.now(dt.UTC), 72).strftime("%d.%m.%Y, %H:%M")


def _start_in_past() -> Errors:
    return (
        (
            "period.start",
            f"Der Beginn liegt in der Vergangenheit. Frühestmöglicher Beginn: {_earliest_start()} Uhr.",
        ),
    )


def _start_too_soon() -> Errors:
    return (
        (
            "period.start",
            "Der Beginn muss mindestens 72 Stunden nach dem Eingang des Antrags liegen, damit "
            "die Schilder rechtzeitig stehen. "
            f"Frühestmöglicher Beginn: {_earliest_start()} Uhr.",
        ),
    )


def _site_plan_details() -> list[tuple[str, str]]:
    return [(f"site_plan.{k}", str(v)) for k, v in FILE_DETAILS.items()]


def _base64_file(content: bytes) -> dict[str, str]:
    return {
        "filename": "vertrag.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(content).decode(),
    }


def _nested(levels: int) -> dict[str, object]:
    nested: dict[str, object] = {"leaf": 1}
    for _ in range(levels - 1):
        nested = {"level": nested}
    return nested


def _signed(
    webhook_id: str, age_s: int = 0, secret: str | None = None
) -> Callable[[bytes], dict[str, str]]:
    def headers(body: bytes) -> dict[str, str]:
        timestamp = int(time.time()) - age_s
        if secret is None:
            return signature_headers(body, webhook_id, timestamp)
        return signature_headers(body, webhook_id, timestamp, secret=secret)

    return headers


def _bad_signature(body: bytes) -> dict[str, str]:
    headers = signature_headers(body, "msg_bad")
    # A valid signature of a different body.
    headers["webhook-signature"] = signature_headers(body + b"&x=1", "msg_bad")["webhook-signature"]
    return headers


@dataclass(frozen=True)
class Bad:
    """One bad input and the answer it must get."""

    service: str
    body: Callable[[], Body]
    status: int
    type: str
    errors: Errors | Callable[[], Errors] = ()
    detail: str | None = None
    title: str | None = None
    auth: Callable[[bytes], dict[str, str]] | None = field(default=None)
    chunked: bool = False


V = "validation"
YES_OR_NO = "Bitte wählen Sie Ja oder Nein."
WHOLE_NUMBER = "Bitte geben Sie eine ganze Zahl ein."
CASES: dict[str, Bad] = {
    # --- missing and malformed fields (422, every failing field named) -----------------------
    "missing-first-name": Bad(
        DOG, _dog_form({"keeper.first_name": DELETE}), 422, V, (("keeper.first_name", REQUIRED),)
    ),
    "missing-consent": Bad(
        DOG, _dog_form(privacy_consent=DELETE), 422, V, (("privacy_consent", CONSENT),)
    ),
    "consent-refused": Bad(
        DOG, _dog_form(privacy_consent=False), 422, V, (("privacy_consent", CONSENT),)
    ),
    "malformed-email": Bad(
        DOG,
        _dog_form({"keeper.contact.email": "erika(at)example"}),
        422,
        V,
        (("keeper.contact.email", "Bitte geben Sie eine gültige E-Mail-Adresse ein."),),
    ),
    "impossible-birth-date": Bad(
        DOG,
        _dog_form({"keeper.birth_date": "31.02.1986"}),
        422,
        V,
        (("keeper.birth_date", BAD_DATE),),
    ),
    "keeper-born-in-future": Bad(
        DOG,
        _dog_form({"keeper.birth_date": (today() + dt.timedelta(days=30)).isoformat()}),
        422,
        V,
        (("keeper.birth_date", IN_FUTURE),),
    ),
    "chip-too-short": Bad(
        DOG,
        _dog_form({"dog.microchip_number": "27609810012"}),
        422,
        V,
        (("dog.microchip_number", CHIP),),
    ),
    "chip-with-letter": Bad(
        DOG,
        _dog_form({"dog.microchip_number": "27609810012345X"}),
        422,
        V,
        (("dog.microchip_number", CHIP),),
    ),
    "acquired-in-future": Bad(
        DOG,
        _dog_form({"dog.acquisition_date": (today() + dt.timedelta(days=1)).isoformat()}),
        422,
        V,
        (("dog.acquisition_date", IN_FUTURE),),
    ),
    "acquired-before-birth": Bad(
        DOG,
        _dog_form({"dog.acquisition_date": (today() - dt.timedelta(days=500)).isoformat()}),
        422,
        V,
        (
            (
                "dog.acquisition_date",
                "Das Datum der Anschaffung darf nicht vor dem Geburtsdatum des Hundes liegen.",
            ),
        ),
    ),
    "unknown-sex": Bad(
        DOG,
        _dog_form({"dog.sex": "unbekannt"}),
        422,
        V,
        (("dog.sex", "Ungültige Auswahl. Erlaubt sind: male, female."),),
    ),
    "no-dog-in-household": Bad(
        DOG,
        _dog_form(dogs_in_household=0),
        422,
        V,
        (
            (
                "dogs_in_household",
                "Die Anzahl der Hunde im Haushalt muss mindestens 1 sein (dieser Hund zählt mit).",
            ),
        ),
    ),
    "dog-count-in-words": Bad(
        DOG,
        _dog_form(dogs_in_household="zwei"),
        422,
        V,
        (("dogs_in_household", "Bitte geben Sie eine ganze Zahl ein."),),
    ),
    "malformed-postal-code": Bad(
        DOG,
        _dog_form({"keeper.address.postal_code": "6126"}),
        422,
        V,
        (("keeper.address.postal_code", "Postleitzahl muss aus fünf Ziffern bestehen."),),
    ),
    "postal-code-of-no-member": Bad(
        DOG,
        _dog_form({"keeper.address.postal_code": "10115", "keeper.address.town": "Berlin"}),
        422,
        V,
        (
            (
                "keeper.address.postal_code",
                "Für diese Postleitzahl ist keine teilnehmende Gemeinde zuständig. "
                "Bitte wenden Sie sich an Ihre Gemeindeverwaltung.",
            ),
        ),
    ),
    "unknown-municipality": Bad(
        DOG, _dog_form(municipality_ags="06434012"), 422, V, (("municipality_ags", NOT_MEMBER),)
    ),
    "malformed-municipality-key": Bad(
        DOG,
        _dog_form(municipality_ags="0643401"),
        422,
        V,
        (("municipality_ags", "Der Amtliche Gemeindeschlüssel muss aus acht Ziffern bestehen."),),
    ),
    "mixed-breed-without-main-breed": Bad(
        DOG,
        _dog_form({"dog.is_mixed_breed": True, "dog.breed": DELETE}),
        422,
        V,
        (
            (
                "dog.main_breeds",
                "Bitte geben Sie bei einem Mischling mindestens eine Hauptrasse an.",
            ),
        ),
    ),
    "tax-relief-without-reason": Bad(
        DOG,
        _dog_form({"tax_relief.requested": True}),
        422,
        V,
        (
            (
                "tax_relief.reason",
                "Bitte geben Sie den Grund für die Steuerbefreiung oder -ermäßigung an.",
            ),
        ),
    ),
    "three-fields-at-once": Bad(
        DOG,
        _dog_form(
            {
                "keeper.last_name": DELETE,
                "dog.microchip_number": "123",
                "dog.acquisition_date": (today() + dt.timedelta(days=10)).isoformat(),
            }
        ),
        422,
        V,
        (
            ("keeper.last_name", REQUIRED),
            ("dog.microchip_number", CHIP),
            ("dog.acquisition_date", IN_FUTURE),
        ),
    ),
    "value-and-group-at-once": Bad(
        DOG,
        lambda: (form_body(dog(), [("keeper", "Erika")]), FORM),
        422,
        V,
        (("keeper", "Das Feld 'keeper' ist zugleich Wert und Gruppe."),),
    ),
    "only-numbered-keys": Bad(
        DOG,
        _raw(b"0=Bello&1=Rex", FORM),
        422,
        V,
        (
            ("keeper", REQUIRED),
            ("dog", REQUIRED),
            ("dogs_in_household", REQUIRED),
            ("privacy_consent", CONSENT),
        ),
    ),
    "process-id-too-long": Bad(
        DOG,
        lambda: (form_body(dog(), [("process_id", "p" * 201)]), FORM),
        422,
        V,
        (("process_id", "Die Vorgangskennung ist zu lang."),),
    ),
    "json-dog-not-an-object": Bad(
        DOG,
        _dog_json(dog="Bello"),
        422,
        V,
        (("dog", "Ungültige Eingabe: erwartet werden Angaben mit einzelnen Feldern."),),
    ),
    "json-chip-as-number": Bad(
        DOG,
        _dog_json({"dog.microchip_number": 276098100123456}),
        422,
        V,
        (("dog.microchip_number", "Bitte geben Sie einen Text ein."),),
    ),
    "json-fractional-dog-count": Bad(
        DOG,
        _dog_json(dogs_in_household=1.5),
        422,
        V,
        (("dogs_in_household", "Bitte geben Sie eine ganze Zahl ein."),),
    ),
    "json-attachment-not-base64": Bad(
        DOG,
        _dog_json(
            attachments=[
                {"filename": "a.pdf", "content_type": "application/pdf", "content_base64": "%%%"}
            ]
        ),
        422,
        V,
        (("attachments.0", "Die Anlage ist nicht gültig Base64-kodiert."),),
    ),
    # --- JSON is typed as the published schema says (no form leniency) -----------------------
    "json-consent-one": Bad(
        DOG, _dog_json(privacy_consent=1), 422, V, (("privacy_consent", YES_OR_NO),)
    ),
    "json-consent-true-string": Bad(
        DOG, _dog_json(privacy_consent="true"), 422, V, (("privacy_consent", YES_OR_NO),)
    ),
    "json-integer-as-string": Bad(
        DOG, _dog_json(dogs_in_household="2"), 422, V, (("dogs_in_household", WHOLE_NUMBER),)
    ),
    "json-tax-relief-without-requested": Bad(
        DOG, _dog_json(tax_relief={}), 422, V, (("tax_relief.requested", REQUIRED),)
    ),
    "json-postal-code-with-newline": Bad(
        DOG,
        _dog_json({"keeper.address.postal_code": "61267\n"}),
        422,
        V,
        (("keeper.address.postal_code", "Postleitzahl muss aus fünf Ziffern bestehen."),),
    ),
    # --- traffic order: period, zone, applicant, construction --------------------------------
    "period-start-in-past": Bad(
        TRAFFIC, _traffic_form(_period(_at(-1, 7), _at(-1, 18))), 422, V, _start_in_past
    ),
    "period-ends-before-start": Bad(
        TRAFFIC,
        _traffic_form(_period(_at(7, 7), _at(6, 18))),
        422,
        V,
        (("period.end", "Das Ende muss nach dem Beginn liegen."),),
    ),
    "period-starts-too-soon": Bad(
        TRAFFIC, _traffic_form(_period(_at(1, 7), _at(1, 18))), 422, V, _start_too_soon
    ),
    "zone-too-long": Bad(
        TRAFFIC,
        _traffic_form({"zone_length_m": 500}),
        422,
        V,
        (("zone_length_m", "Die Länge der Zone muss zwischen 5 und 200 Metern liegen."),),
    ),
    "person-with-company-block": Bad(
        TRAFFIC,
        _traffic_form({"applicant.company": company()}),
        422,
        V,
        (
            (
                "applicant.company",
                "Wenn eine Privatperson den Antrag stellt, bitte keine Firmenangaben machen.",
            ),
        ),
    ),
    "construction-without-site-plan": Bad(
        TRAFFIC, _construction(()), 422, V, (("site_plan", SITE_PLAN),)
    ),
    "construction-without-details": Bad(
        TRAFFIC,
        _construction((_plan(PDF),), {"construction": DELETE}),
        422,
        V,
        (
            (
                "construction",
                "Bei einer Baustelle sind Angaben zur Baustelle erforderlich "
                "(Art der Sperrung, Firma, verantwortliche Person).",
            ),
        ),
    ),
    "responsible-person-bad-phone": Bad(
        TRAFFIC,
        _construction((_plan(PDF),), {"construction.responsible_person.phone": "ruf mich an"}),
        422,
        V,
        (
            (
                "construction.responsible_person.phone",
                "Bitte geben Sie eine gültige Telefonnummer an (6 bis 20 Ziffern; "
                "außerdem erlaubt: Leerzeichen, +, /, -, Klammern).",
            ),
        ),
    ),
    # --- attachments ----------------------------------------------------------------------------
    "executable-disguised-as-pdf": Bad(
        TRAFFIC, _construction((_plan(ELF),)), 422, V, (("site_plan", BAD_FILE_TYPE),)
    ),
    # Issue 23: `%PDF-` anywhere in the first KiB made any file a PDF.
    "html-with-pdf-marker": Bad(
        TRAFFIC,
        _construction(
            (FilePart("site_plan", "Lageplan.html", "application/pdf", HTML_WITH_PDF_MARKER),)
        ),
        422,
        V,
        (("site_plan", BAD_FILE_TYPE),),
    ),
    "pe-stub-with-pdf-marker": Bad(
        TRAFFIC,
        _construction((_plan(PE_WITH_PDF_MARKER),)),
        422,
        V,
        (("site_plan", BAD_FILE_TYPE),),
    ),
    "json-html-with-pdf-marker": Bad(
        DOG,
        _dog_json(attachments=[_base64_file(HTML_WITH_PDF_MARKER)]),
        422,
        V,
        (("attachments.0", BAD_FILE_TYPE),),
    ),
    "png-declared-as-pdf": Bad(
        TRAFFIC,
        _construction((_plan(PNG),)),
        422,
        V,
        (("site_plan", "Der Inhalt der Datei passt nicht zu ihrem angegebenen Typ."),),
    ),
    "empty-file": Bad(
        TRAFFIC, _construction((_plan(b""),)), 422, V, (("site_plan", "Die Datei ist leer."),)
    ),
    "oversized-file": Bad(
        TRAFFIC,
        _construction((_plan(PDF + b"0" * (600 * 1024)),)),
        413,
        "file-too-large",
        (("site_plan", "Die Datei ist zu groß."),),
        detail="Jede Datei darf höchstens 0,5 MB groß sein.",
    ),
    "too-many-files": Bad(
        TRAFFIC,
        _construction(
            (
                _plan(PDF),
                *(FilePart("attachments", f"a{i}.pdf", "application/pdf", PDF) for i in range(10)),
            )
        ),
        413,
        "too-many-files",
        detail="Höchstens 10 Dateien sind erlaubt.",
    ),
    # --- attachment details written by the sender, without the file -------------------------
    "form-site-plan-details-without-file": Bad(
        TRAFFIC,
        lambda: (form_body(traffic(reason="construction"), _site_plan_details()), FORM),
        422,
        V,
        (("site_plan", NOT_A_FILE),),
    ),
    "multipart-site-plan-details-without-file": Bad(
        TRAFFIC,
        lambda: multipart_body([*flatten(traffic(reason="construction")), *_site_plan_details()]),
        422,
        V,
        (("site_plan", NOT_A_FILE),),
    ),
    "form-site-plan-as-text": Bad(
        TRAFFIC,
        lambda: (form_body(traffic(reason="construction"), [("site_plan", "lageplan.pdf")]), FORM),
        422,
        V,
        (("site_plan", NOT_A_FILE),),
    ),
    "json-site-plan-details-without-file": Bad(
        TRAFFIC,
        lambda: (as_json(traffic({"site_plan": FILE_DETAILS}, reason="construction")), JSON),
        422,
        V,
        (("site_plan", NOT_A_FILE),),
    ),
    "form-dog-attachment-details-without-file": Bad(
        DOG,
        lambda: (
            form_body(dog(), [(f"attachments.0.{k}", str(v)) for k, v in FILE_DETAILS.items()]),
            FORM,
        ),
        422,
        V,
        (("attachments.0", NOT_A_FILE),),
    ),
    "json-dog-attachment-details-without-file": Bad(
        DOG,
        _dog_json(attachments=[FILE_DETAILS, FILE_DETAILS]),
        422,
        V,
        (("attachments.0", NOT_A_FILE), ("attachments.1", NOT_A_FILE)),
    ),
    "json-dog-file-and-details": Bad(
        DOG,
        _dog_json(attachments=[_base64_file(PDF), FILE_DETAILS]),
        422,
        V,
        (("attachments.1", NOT_A_FILE),),
    ),
    "multipart-file-and-details-of-another": Bad(
        DOG,
        lambda: multipart_body(
            [*flatten(dog()), ("attachments.0.filename", "zweite.pdf")],
            [FilePart("attachments", "vertrag.pdf", "application/pdf", PDF)],
        ),
        422,
        V,
        (("attachments.0", NOT_A_FILE),),
    ),
    "multipart-file-for-no-place": Bad(
        DOG,
        lambda: multipart_body(
            flatten(dog()), [FilePart("dog..photo", "hund.png", "image/png", PNG)]
        ),
        422,
        V,
        (("dog..photo", "Unerwartete Anlage."),),
    ),
    # --- body size and media type ---------------------------------------------------------------
    "oversized-body": Bad(
        DOG,
        _raw(b"keeper.first_name=" + b"E" * (2 * 1024 * 1024), FORM),
        413,
        "body-too-large",
        detail="Höchstens 2 MB sind erlaubt.",
    ),
    "oversized-chunked-body": Bad(
        DOG,
        lambda: (form_body(dog(), [("filler", "x" * (2 * 1024 * 1024))]), FORM),
        413,
        "body-too-large",
        detail="Höchstens 2 MB sind erlaubt.",
        chunked=True,
    ),
    "wrong-media-type": Bad(
        DOG,
        lambda: (form_body(dog()), "text/plain"),
        415,
        "unsupported-media-type",
        detail=f"Erhalten: text/plain; erlaubt sind {SUPPORTED}.",
    ),
    "xml-media-type": Bad(
        DOG,
        _raw(b"<antrag/>", "application/xml"),
        415,
        "unsupported-media-type",
        detail=f"Erhalten: application/xml; erlaubt sind {SUPPORTED}.",
    ),
    "no-media-type": Bad(
        DOG,
        lambda: (form_body(dog()), None),
        415,
        "unsupported-media-type",
        detail=f"Erhalten: keine Angabe; erlaubt sind {SUPPORTED}.",
    ),
    # --- broken bodies (400) --------------------------------------------------------------------
    "malformed-json": Bad(
        DOG,
        _raw(b'{"privacy_consent": true,', JSON),
        400,
        "malformed-body",
        detail="Das JSON ist ungültig (Zeile 1, Spalte 26).",
        title=MALFORMED,
    ),
    "json-array": Bad(
        DOG,
        lambda: (json.dumps([dog()]).encode(), JSON),
        400,
        "malformed-body",
        detail="Das JSON muss ein Objekt sein.",
    ),
    "json-nan": Bad(
        DOG,
        _raw(b'{"dogs_in_household": NaN}', JSON),
        400,
        "malformed-body",
        detail="Das JSON enthält NaN oder Infinity.",
    ),
    "json-huge-number": Bad(
        DOG,
        _raw(b'{"dogs_in_household": ' + b"1" * 5000 + b"}", JSON),
        400,
        "malformed-body",
        detail="Das JSON enthält einen ungültigen Wert.",
    ),
    "deeply-nested-json": Bad(
        DOG,
        _deep_json,
        400,
        "malformed-body",
        detail="Das JSON ist tiefer als 32 Ebenen verschachtelt.",
    ),
    "form-key-of-1000-segments": Bad(
        DOG,
        lambda: (form_body(dog(), [(".".join(["a"] * 1000), "x")]), FORM),
        400,
        "malformed-body",
        detail=DOTTED_TOO_DEEP,
    ),
    "form-key-one-level-too-deep": Bad(
        DOG,
        lambda: (form_body(dog(), [(".".join(["a"] * 32), "x")]), FORM),
        400,
        "malformed-body",
        detail=DOTTED_TOO_DEEP,
    ),
    "multipart-key-of-1000-segments": Bad(
        DOG,
        lambda: multipart_body([*flatten(dog()), (".".join(["a"] * 1000), "x")]),
        400,
        "malformed-body",
        detail=DOTTED_TOO_DEEP,
    ),
    "multipart-file-name-of-1000-segments": Bad(
        DOG,
        lambda: multipart_body(
            flatten(dog()), [FilePart(".".join(["a"] * 1000), "a.pdf", "application/pdf", PDF)]
        ),
        400,
        "malformed-body",
        detail=DOTTED_TOO_DEEP,
    ),
    "json-dotted-key-deeper-than-json-allows": Bad(
        DOG,
        lambda: (as_json({**dog(), ".".join(["a"] * 20): _nested(15)}), JSON),
        400,
        "malformed-body",
        detail=DOTTED_TOO_DEEP,
    ),
    # str.isdigit() takes "¹" and "²", which int() refuses: they were a 500 (bench.fuzz found it).
    "json-superscript-digit-as-list-position": Bad(
        DOG,
        lambda: (as_json(dog({"dog.main_breeds": {"\u00b9": "Pudel"}})), JSON),
        422,
        V,
        (("dog.main_breeds", "Bitte geben Sie eine Liste an."),),
    ),
    "form-superscript-digit-as-list-position": Bad(
        DOG,
        lambda: (form_body(dog(), [("dog.main_breeds.\u00b2", "Pudel")]), FORM),
        422,
        V,
        (("dog.main_breeds", "Bitte geben Sie eine Liste an."),),
    ),
    "form-superscript-digit-as-attachment-position": Bad(
        DOG,
        lambda: (form_body(dog(), [("attachments.\u00b2", "x")]), FORM),
        422,
        V,
        (
            (
                "attachments",
                "Eine Anlage muss als Datei mitgeschickt werden; Angaben zu einer Datei ohne "
                "ihren Inhalt werden nicht angenommen.",
            ),
        ),
    ),
    "json-lone-surrogate": Bad(
        DOG,
        _raw(b'{"keeper": {"last_name": "M\\ud800ller"}}', JSON),
        400,
        "malformed-body",
        detail="Das JSON enthält ungültige Unicode-Zeichen (ein halbes Ersatzzeichenpaar).",
    ),
    "json-invalid-utf8": Bad(
        DOG,
        _raw(b'{"keeper": {"last_name": "M\xfcller"}}', JSON),
        400,
        "malformed-body",
        detail=NOT_UTF8,
    ),
    "form-invalid-utf8": Bad(
        DOG, _raw(b"keeper.last_name=M\xfcller", FORM), 400, "malformed-body", detail=NOT_UTF8
    ),
    "form-percent-encoded-invalid-utf8": Bad(
        DOG,
        _raw(b"keeper.last_name=M%FCller", FORM),
        400,
        "malformed-body",
        detail="Ein Wert ist nicht gültig in utf-8 kodiert.",
    ),
    "form-unknown-charset": Bad(
        DOG,
        _raw(b"keeper.last_name=Meier", FORM + "; charset=x-klingon"),
        400,
        "malformed-body",
        detail="Unbekannte Zeichenkodierung 'x-klingon'.",
    ),
    "form-broken-pairs": Bad(
        DOG,
        _raw(b"privacy_consent=true&&=x", FORM),
        400,
        "malformed-body",
        detail="Die Formulardaten sind nicht gültig kodiert oder enthalten zu viele Felder.",
    ),
    "form-too-many-fields": Bad(
        DOG,
        _raw("&".join(f"f{i}=x" for i in range(501)).encode(), FORM),
        400,
        "malformed-body",
        detail="Die Formulardaten sind nicht gültig kodiert oder enthalten zu viele Felder.",
    ),
    "multipart-truncated": Bad(
        DOG,
        _raw(
            b'--b0undary\r\nContent-Disposition: form-data; name="dog.name"\r\n\r\nBello',
            MULTIPART_BOUNDARY,
        ),
        400,
        "malformed-body",
        detail="Die multipart-Daten sind unvollständig oder beschädigt.",
    ),
    "multipart-garbage": Bad(
        DOG,
        _raw(b"this is not multipart at all", MULTIPART_BOUNDARY),
        400,
        "malformed-body",
        detail="Die multipart-Daten sind unvollständig oder beschädigt.",
    ),
    "multipart-without-boundary": Bad(
        DOG,
        lambda: (multipart_body(flatten(dog()))[0], "multipart/form-data"),
        400,
        "malformed-body",
        detail="Der multipart-Grenzwert (boundary) fehlt.",
    ),
    "multipart-invalid-utf8": Bad(
        DOG,
        _raw(
            b'--b0undary\r\nContent-Disposition: form-data; name="keeper.last_name"\r\n\r\n'
            b"M\xfcller\r\n--b0undary--\r\n",
            MULTIPART_BOUNDARY,
        ),
        400,
        "malformed-body",
        detail=NOT_UTF8,
    ),
    "json-too-many-keys": Bad(
        DOG,
        _json_of_many_keys,
        413,
        "too-many-fields",
        detail="Das JSON darf höchstens 500 Schlüssel und Listeneinträge enthalten.",
    ),
    "json-too-many-list-items": Bad(
        DOG,
        _raw(b'{"items": [' + b",".join([b"0"] * 600) + b"]}", JSON),
        413,
        "too-many-fields",
        detail="Das JSON darf höchstens 500 Schlüssel und Listeneinträge enthalten.",
    ),
    "multipart-too-many-parts": Bad(
        DOG,
        _too_many_multipart_parts,
        413,
        "too-many-parts",
        detail="Höchstens 500 Felder sind erlaubt.",
    ),
    # --- credentials (401) ----------------------------------------------------------------------
    "missing-secret": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Es fehlen Zugangsdaten (Geheimnis-Header oder Signatur).",
        auth=lambda body: {},
    ),
    "wrong-secret": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Das gemeinsame Geheimnis ist falsch.",
        auth=lambda body: {"X-Bridge-Secret": "formcycle-test-secret-0123456789abcdeF"},
    ),
    "wrong-secret-with-valid-signature": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Das gemeinsame Geheimnis ist falsch.",
        auth=lambda body: {
            **signature_headers(body, "msg_with_wrong_secret"),
            "X-Bridge-Secret": "formcycle-test-secret-0123456789abcdeF",
        },
    ),
    "right-secret-with-bad-signature": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Die Signatur ist ungültig.",
        auth=lambda body: {**secret_headers(), **_bad_signature(body)},
    ),
    "bad-signature": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Die Signatur ist ungültig.",
        auth=_bad_signature,
    ),
    "signature-by-other-key": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Die Signatur ist ungültig.",
        auth=_signed("msg_other_key", secret=OTHER_WHSEC),
    ),
    "stale-signature": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Der Zeitstempel der Signatur ist zu alt oder liegt in der Zukunft.",
        auth=_signed("msg_stale", age_s=6 * 60),
    ),
    "signature-from-future": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Der Zeitstempel der Signatur ist zu alt oder liegt in der Zukunft.",
        auth=_signed("msg_future", age_s=-6 * 60),
    ),
    "signature-incomplete": Bad(
        DOG,
        _dog_form(),
        401,
        "unauthorized",
        detail="Die Signatur ist unvollständig (webhook-id, webhook-timestamp, webhook-signature).",
        auth=lambda body: {"webhook-id": "msg_only_id"},
    ),
    # --- routing (404) --------------------------------------------------------------------------
    "unknown-service": Bad(
        "cat-registration",
        _dog_form(),
        404,
        "unknown-service",
        detail="Den Dienst 'cat-registration' gibt es hier nicht.",
        title="Unbekannter Online-Dienst.",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_refused_and_nothing_is_stored(
    client: FlaskClient, store: Store, case: Bad
) -> None:
    """Each bad input gets its problem, naming every failing field in German; the store is unchanged."""
    before = snapshot(store)
    body, content_type = case.body()
    headers = secret_headers() if case.auth is None else case.auth(body)
    if case.chunked:
        assert content_type is not None
        response = post_chunked(client, case.service, body, content_type, headers)
    else:
        response = post(client, case.service, body, content_type, headers)
    errors = case.errors() if callable(case.errors) else case.errors
    problem = assert_problem(
        response, case.status, case.type, errors=errors, detail=case.detail, title=case.title
    )
    if case.status == 422:
        assert problem["title"] == "Die Angaben sind unvollständig oder fehlerhaft."
        assert problem["detail"] == f"{len(errors)} Angabe(n) müssen korrigiert werden."
    if case.status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert problem["instance"] == f"/webhooks/formcycle/{case.service}"
    assert snapshot(store) == before


def test_the_table_holds_enough_distinct_inputs() -> None:
    """At least 30 bad inputs, no two of them the same request."""
    seen = set()
    for case in CASES.values():
        body, content_type = case.body()
        auth = case.auth(body) if case.auth else secret_headers()
        seen.add((case.service, body, content_type, tuple(sorted(auth.items())), case.chunked))
    assert len(CASES) >= 30
    assert len(seen) == len(CASES)


ENGLISH: dict[str, tuple[Bad, tuple[tuple[str, str], ...], str | None]] = {
    "en-wrong-chip": (
        CASES["chip-too-short"],
        (("dog.microchip_number", "The microchip number must consist of exactly 15 digits."),),
        "1 field(s) need to be corrected.",
    ),
    "en-site-plan": (
        CASES["construction-without-site-plan"],
        (
            (
                "site_plan",
                "For a construction site, a site plan (traffic sign plan) must be attached.",
            ),
        ),
        None,
    ),
    "en-missing-secret": (
        CASES["missing-secret"],
        (),
        "Credentials are missing (secret header or signature).",
    ),
    "en-media-type": (
        CASES["wrong-media-type"],
        (),
        f"Got: text/plain; supported are {SUPPORTED}.",
    ),
    "en-html-with-pdf-marker": (
        CASES["html-with-pdf-marker"],
        (("site_plan", "This file type is not allowed; allowed are PDF, PNG, JPEG."),),
        "1 field(s) need to be corrected.",
    ),
    "en-unknown-service": (CASES["unknown-service"], (), "No service 'cat-registration'."),
    "en-site-plan-details": (
        CASES["json-site-plan-details-without-file"],
        (
            (
                "site_plan",
                "An attachment must be sent as a file; details of a file without its content "
                "are not accepted.",
            ),
        ),
        None,
    ),
    "en-dotted-key-too-deep": (
        CASES["form-key-of-1000-segments"],
        (),
        "A dotted field name is nested deeper than 32 levels.",
    ),
    "en-nested-json": (
        CASES["deeply-nested-json"],
        (),
        "The JSON is nested deeper than 32 levels.",
    ),
}


@pytest.mark.parametrize(("case", "errors", "detail"), list(ENGLISH.values()), ids=list(ENGLISH))
def test_problems_in_english_on_request(
    client: FlaskClient,
    store: Store,
    case: Bad,
    errors: tuple[tuple[str, str], ...],
    detail: str | None,
) -> None:
    """With Accept-Language: en the same problems come in English."""
    before = snapshot(store)
    body, content_type = case.body()
    headers = {
        **(secret_headers() if case.auth is None else case.auth(body)),
        "Accept-Language": "en",
    }
    response = post(client, case.service, body, content_type, headers)
    assert_problem(response, case.status, case.type, errors=errors, detail=detail, lang="en")
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        pytest.param("fr-FR, fr;q=0.9", "de", id="french-gets-german"),
        pytest.param("de-AT, en;q=0.5", "de", id="austrian-german-over-english"),
        pytest.param("en-GB, de;q=0.8", "en", id="british-english-first"),
        pytest.param("*", "de", id="anything"),
    ],
)
def test_language_choice(
    client: FlaskClient, store: Store, accept_language: str, lang: str
) -> None:
    """German is the default; English only when the caller prefers it to German."""
    before = snapshot(store)
    headers = {**secret_headers(), "Accept-Language": accept_language}
    response = post(client, DOG, form_body(dog(privacy_consent=False)), FORM, headers)
    message = CONSENT if lang == "de" else "Consent to the processing of your data is required."
    assert_problem(response, 422, V, errors=[("privacy_consent", message)], lang=lang)
    assert snapshot(store) == before


@pytest.mark.parametrize("with_key", [False, True], ids=["without-process-id", "with-process-id"])
def test_store_unreachable_answers_503(
    database_url: str, redis_url: str, tmp_path: Path, with_key: bool
) -> None:
    """When the store cannot be used the sender is told to retry (503), never 2xx or 500."""
    if database_url.startswith("sqlite"):
        broken = f"sqlite:///{tmp_path / 'not-migrated.db'}"
    else:
        broken = database_url.rsplit("/", 1)[0] + "/no_such_database_for_bridge"
    app = create_app(Settings.from_env(base_environ(broken, redis_url)))
    try:
        extra = [("process_id", "proc-503")] if with_key else []
        response = post(app.test_client(), DOG, form_body(dog(), extra))
        assert_problem(
            response,
            503,
            "store-unavailable",
            detail="Bitte senden Sie ihn später noch einmal; es wurde nichts gespeichert.",
            title="Der Antrag konnte nicht gespeichert werden.",
        )
        assert response.headers["Retry-After"] == "30"
    finally:
        app.extensions["bridge"].store.dispose()
    if database_url.startswith("sqlite"):
        engine = create_engine(broken)
        assert inspect(engine).get_table_names() == []
        engine.dispose()

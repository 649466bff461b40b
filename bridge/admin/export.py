"""The admin page's lists as CSV for a town's statistics: the failed deliveries and the submissions.

Each export holds exactly the columns its list shows (no personal data beyond them), under the
same filter and the same scope as the list (the domain's queries take the signed-in account),
in the form German spreadsheets open without asking: UTF-8 with a byte order mark, semicolons,
CRLF. A cell that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return) gets a leading apostrophe, so an error text an office sent
back cannot run in the clerk's spreadsheet (CSV injection, OWASP). The failed list's last
error is the German sentence the list shows (`bridge.admin.explain`), not the office's
technical text. Each export is recorded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from flask import request
from werkzeug.wrappers import Response

from bridge.admin.blueprint import actor, blueprint
from bridge.admin.explain import explain
from bridge.admin.filters import PAGING, read_filter
from bridge.admin.labels import DELIVERY_STATUS, SUBMISSION_STATUS, label, local_time
from bridge.state import current
from domain.accounts.accounts import record_action
from domain.admin.search import (
    MAX_PER_PAGE,
    Page,
    SubmissionFilter,
    failed_deliveries,
    list_submissions,
)
from domain.problems import Problem, msg
from schemas.options import LOCAL_TZ
from store.models import utcnow

# More rows than this are refused: the filter should be narrowed (a month, an office).
MAX_ROWS = 20_000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
T = TypeVar("T")

FAILED_HEADER = (
    "Aktenzeichen",
    "Leistung",
    "Stelle",
    "Letzter Fehler",
    "Versuche",
    "Fehlgeschlagen seit",
)
SUBMISSIONS_HEADER = ("Aktenzeichen", "Leistung", "Kommune", "Status", "Zustellungen", "Eingang")


def csv_cell(value: object) -> str:
    """A value as a CSV cell that no spreadsheet runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The table as CSV for German spreadsheets: BOM, semicolons, CRLF, every cell guarded."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _all(fetch: Callable[[int], Page[T]]) -> list[T]:
    """Every item of a paged list, refused with 422 beyond MAX_ROWS."""
    first = fetch(1)
    if first.total > MAX_ROWS:
        raise Problem(
            422,
            "too-many",
            msg(
                f"Mehr als {MAX_ROWS} Zeilen; bitte den Filter eingrenzen.",
                f"More than {MAX_ROWS} rows; please narrow the filter.",
            ),
        )
    items = list(first.items)
    for number in range(2, first.pages + 1):
        items += fetch(number).items
    return items


def _download(body: bytes, stem: str, flt: SubmissionFilter, rows: int) -> Response:
    """The CSV as a download, with the export on the record (filter and row count, no data)."""
    with current().store.session() as session:
        record_action(
            session,
            actor(),
            "admin.exported",
            detail={"list": stem, "filter": flt.as_args(), "rows": rows},
        )
    day = utcnow().astimezone(LOCAL_TZ).date().isoformat()
    return Response(
        body,
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{stem}-{day}.csv"',
            "Content-Type": "text/csv; charset=utf-8",
        },
    )


def _names() -> tuple[Callable[[str], str], Callable[[str], str]]:
    config = current().settings.config

    def office(office_id: str) -> str:
        found = config.offices.get(office_id)
        return found.name if found else office_id

    def service(service_id: str) -> str:
        found = config.services.get(service_id)
        return found.title if found else service_id

    return office, service


@blueprint.get("/fehler/export.csv")
def failures_csv() -> Response:
    """The failed deliveries under the list's filter, as the list shows them, as CSV."""
    flt = read_filter(request.args, extra=PAGING)
    office, service = _names()
    items = _all(
        lambda n: failed_deliveries(
            current().store, flt, actor=actor(), page=n, per_page=MAX_PER_PAGE
        )
    )
    rows = [
        (
            f.reference,
            service(f.service),
            office(f.office),
            explain(f.last_error, f.last_status_code),
            f.attempts,
            local_time(f.failed_since),
        )
        for f in items
    ]
    return _download(csv_bytes(FAILED_HEADER, rows), "fehlgeschlagene-zustellungen", flt, len(rows))


@blueprint.get("/antraege/export.csv")
def submissions_csv() -> Response:
    """The submissions under the list's filter, as the list shows them, as CSV."""
    flt = read_filter(request.args, extra=PAGING)
    office, service = _names()
    config = current().settings.config
    items = _all(
        lambda n: list_submissions(
            current().store, flt, config, actor=actor(), page=n, per_page=MAX_PER_PAGE
        )
    )
    rows = [
        (
            s.reference,
            service(s.service),
            s.municipality,
            label(SUBMISSION_STATUS, s.status),
            ", ".join(
                f"{office(d.office)}: {label(DELIVERY_STATUS, d.status)}" for d in s.deliveries
            ),
            local_time(s.received_at),
        )
        for s in items
    ]
    return _download(csv_bytes(SUBMISSIONS_HEADER, rows), "antraege", flt, len(rows))

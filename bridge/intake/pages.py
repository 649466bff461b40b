"""The German page a citizen sees when Formcycle shows our refusal (Accept: text/html).

Formcycle's "return as response page" puts our answer in front of the citizen, so a refusal
must read like the confirmation page does: German, short, every failing field by its label.
It never shows personal data nor anything the sender typed: a field the schema knows is named
by its German title (`schemas.labels.field_label`), any other key only as "weitere Angabe";
the message texts are the schemas' own; the problem's detail is shown only where it is built
from our configuration (limits, the idempotency rule), never where it repeats a header.
API clients (no Accept, or JSON) keep the application/problem+json answer unchanged.
"""

from __future__ import annotations

from flask import Response, render_template

from domain.problems import FieldError, Problem
from schemas.labels import field_label

#: Keys of the bridge's own blocks, which no service schema describes.
OWN_LABELS: dict[str, tuple[str, ...]] = {
    "payment": ("Zahlung",),
    "payment.transaction_id": ("Zahlung", "Transaktionsnummer"),
    "payment.provider": ("Zahlung", "Zahlungsanbieter"),
    "_schema": ("Antrag",),
}
#: Statuses whose detail comes from our configuration only (sizes, counts, the idempotency rule).
DETAIL_SHOWN = frozenset({409, 413, 422})
#: What the citizen can do, by status; a technical refusal is nothing the citizen can fix.
ADVICE = {
    409: "Bitte füllen Sie das Formular neu aus und senden Sie es erneut ab.",
    413: "Bitte verkleinern Sie die Anlagen oder senden Sie weniger Dateien.",
    422: "Bitte gehen Sie zurück zum Formular, korrigieren Sie die genannten Angaben und "
    "senden Sie es erneut ab.",
    429: "Bitte warten Sie einen Moment und senden Sie das Formular dann erneut ab.",
}
TECHNICAL = (
    "Das liegt nicht an Ihren Angaben. Bitte versuchen Sie es später noch einmal; besteht das "
    "Problem weiter, wenden Sie sich an die Stelle, die das Formular anbietet."
)


def _row(schema_key: str | None, error: FieldError) -> tuple[str, str]:
    """(label, message) of one failing field; a key the schema does not know is not echoed."""
    labels = OWN_LABELS.get(error.field) or (
        field_label(schema_key, error.field) if schema_key else None
    )
    if labels is None:
        return "Weitere Angabe", "Diese Angabe ist im Formular nicht vorgesehen oder nicht lesbar."
    return " › ".join(labels), str(error.message)


def refusal_page(problem: Problem, schema_key: str | None) -> Response:
    """The problem as a German HTML page with the problem's status and headers."""
    rows = [_row(schema_key, e) for e in problem.errors]
    document = render_template(
        "citizen/rejected.html",
        title=str(problem.title),
        detail=str(problem.detail) if problem.detail and problem.status in DETAIL_SHOWN else None,
        rows=rows,
        advice=ADVICE.get(problem.status, TECHNICAL),
    )
    response = Response(document, status=problem.status, mimetype="text/html")
    response.headers.update(problem.headers)
    response.headers["Content-Language"] = "de"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response

"""The admin page's blueprint and what every page of it shares: headers, error pages, template helpers.

The pages register their routes on `blueprint` in their own modules (`session`, `overview`,
`lists`, `case`, `bulk`); `bridge.admin.web` imports them all, so registering it brings them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Blueprint, g, render_template, request, url_for
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from bridge.admin import csrf as admin_csrf
from bridge.admin.explain import explain
from bridge.admin.filters import FILTER_LABELS
from bridge.admin.labels import (
    DELIVERY_STATUS,
    JOURNAL_KIND,
    JOURNAL_VERDICT,
    PAYMENT_STATUS,
    ROLE,
    SUBMISSION_STATUS,
    TASK_AREA,
    clock,
    event_sentence,
    fit_connect_event,
    label,
    local_day,
    local_time,
    money,
    payment_method,
    plural,
)
from bridge.state import current
from domain.accounts.accounts import Actor, Role
from domain.problems import Problem
from infra.logs import log_event

log = logging.getLogger(__name__)

# The page's templates and style sheet live in bridge/ (beside the app), not in bridge/admin/.
BRIDGE_DIR = Path(__file__).resolve().parent.parent

blueprint = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder=str(BRIDGE_DIR / "templates"),
    static_folder=str(BRIDGE_DIR / "static"),
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

# What a redirect after an action may say; the query carries a code, never free text.
NOTICES = {
    "replayed": "Die Zustellung wird erneut gesendet.",
    "noop": "Nichts zu tun: die Zustellung wartet bereits auf den Versand.",
    "cancelled": "Die Zustellung wurde abgebrochen.",
    "case-cancelled": (
        "Der Antrag wurde zurückgezogen: alle offenen Zustellungen sind abgebrochen, eine noch "
        "nicht bezahlte Gebühr ist nicht mehr zu bezahlen."
    ),
    "rerouted": "Die Zustellung geht jetzt an die gewählte Stelle.",
    "bulk-cancelled": "Die Sammel-Wiederholung wurde abgebrochen.",
    "logged-out": "Sie sind abgemeldet.",
    "expired": "Ihre Sitzung ist abgelaufen. Bitte erneut anmelden.",
}


def actor() -> Actor:
    """Who is signed in on this request (the session guard let the request through)."""
    signed_in = g.get("admin_actor")
    assert isinstance(signed_in, Actor)
    return signed_in


def error_page(
    status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> Response:
    """A German error page with `status`; the back link goes where the clerk came from."""
    referer = request.headers.get("Referer", "")
    own = admin_csrf.origin_of(request.host_url)
    back = referer if own and admin_csrf.origin_of(referer) == own else url_for("admin.overview")
    body = render_template(
        "admin/error.html", title=title, detail=detail, errors=errors or [], back_url=back
    )
    return Response(body, status=status, mimetype="text/html")


def forbidden(action: str) -> Response:
    """The 403 page for a viewer's POST, with the refusal in the log (account id, no names)."""
    refused = actor()
    log_event(
        log,
        "admin.refused",
        reason="role",
        action=action,
        account_id=refused.account_id,
        role=refused.role,
    )
    return error_page(
        403,
        "Keine Berechtigung",
        "Für diese Aktion ist die Rolle „Bedienen“ nötig. Es wurde nichts geändert.",
    )


@blueprint.after_request
def _headers(response: Response) -> Response:
    """Security headers on every admin page: no framing, no caching, only our own sources."""
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint != "admin.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.errorhandler(Problem)
def _on_problem(problem: Problem) -> Response:
    errors = [
        {"label": FILTER_LABELS.get(e.field, e.field), "message": str(e.message)}
        for e in problem.errors
    ]
    detail = str(problem.detail) if problem.detail is not None else "Es wurde nichts geändert."
    return error_page(problem.status, str(problem.title), detail, errors)


@blueprint.errorhandler(OperationalError)
def _on_database_down(exc: OperationalError) -> Response:
    """The database is unreachable: a German 503 page instead of an internal error."""
    log_event(log, "admin.database_unavailable", level=logging.WARNING, error=type(exc).__name__)
    response = error_page(
        503,
        "Die Datenbank ist gerade nicht erreichbar.",
        "Bitte in einigen Minuten erneut versuchen; es wurde nichts geändert.",
    )
    response.headers["Retry-After"] = "60"
    return response


_HTTP_TITLES = {
    400: "Die Anfrage ist fehlerhaft.",
    404: "Nicht gefunden.",
    405: "Diese Aktion geht hier nicht.",
    413: "Die Anfrage ist zu groß.",
}


@blueprint.errorhandler(HTTPException)
def _on_http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    if code >= 500:
        return app_error_page(code)
    return error_page(code, _HTTP_TITLES.get(code, exc.name), "Es wurde nichts geändert.")


# The app's own error pages for addresses under /admin/ (a mistyped address, an internal error).
_APP_ERRORS = {
    403: ("Keine Berechtigung.", "Diese Seite ist für Ihr Konto nicht freigegeben."),
    404: (
        "Diese Seite gibt es nicht.",
        "Bitte die Adresse prüfen oder über die Übersicht weitergehen.",
    ),
    405: ("Diese Aktion geht hier nicht.", "Es wurde nichts geändert."),
    500: (
        "Ein interner Fehler ist aufgetreten.",
        "Es wurde nichts geändert. Bitte später erneut versuchen; bleibt der Fehler, bitte der "
        "IT-Betreuung Bescheid geben.",
    ),
}


def is_admin_path(path: str) -> bool:
    """Whether `path` is on the admin page (its errors are German HTML pages, not JSON)."""
    return path == blueprint.url_prefix or path.startswith(f"{blueprint.url_prefix}/")


def app_error_page(code: int) -> Response:
    """A German HTML error page for an address under /admin/ that no page of it handled."""
    title, detail = _APP_ERRORS.get(
        code, _APP_ERRORS[500] if code >= 500 else (_HTTP_TITLES.get(code, "Fehler."), "")
    )
    body = render_template(
        "admin/error.html",
        title=title,
        detail=detail or "Es wurde nichts geändert.",
        errors=[],
        back_url=url_for("admin.overview"),
        notices=[],
    )
    return _headers(Response(body, status=code, mimetype="text/html"))


def _actor_label(text: str) -> str:
    kind, _, name = text.partition(":")
    if kind == "account" and name:
        return name
    if kind == "token" and name:
        return f"API-Schlüssel {name}"
    return "System"


@blueprint.context_processor
def _template_helpers() -> dict[str, Any]:
    config = current().settings.config
    signed_in = g.get("admin_actor")

    def office_name(office_id: str) -> str:
        office = config.offices.get(office_id)
        return office.name if office else office_id

    def service_title(service_id: str) -> str:
        service = config.services.get(service_id)
        return service.title if service else service_id

    def provider_name(provider_id: str) -> str:
        provider = config.payment_providers.get(provider_id)
        return provider.name if provider else "Online-Bezahldienst"

    notice = NOTICES.get(request.args.get("hinweis", ""))
    return {
        "actor": signed_in,
        "role_label": label(ROLE, signed_in.role) if signed_in else "",
        "may_operate": bool(signed_in and signed_in.may(Role.OPERATOR)),
        "csrf_token": g.get("admin_csrf", ""),
        "notices": [("ok", notice)] if notice else [],
        "when": local_time,
        "day_label": local_day,
        "submission_status": lambda s: label(SUBMISSION_STATUS, s),
        "delivery_status": lambda s: label(DELIVERY_STATUS, s),
        "payment_status": lambda s: label(PAYMENT_STATUS, s),
        "journal_kind": lambda s: label(JOURNAL_KIND, s),
        "journal_verdict": lambda s: label(JOURNAL_VERDICT, s),
        "event_kind": event_sentence,
        "fit_connect_event": fit_connect_event,
        "explain": explain,
        "money": money,
        "payment_method": payment_method,
        "plural": plural,
        "clock": clock,
        "provider_name": provider_name,
        "task_area": lambda s: label(TASK_AREA, s),
        "number": lambda n: f"{n:g}".replace(".", ","),
        "actor_label": _actor_label,
        "office_name": office_name,
        "service_title": service_title,
    }

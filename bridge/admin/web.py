"""The German admin web page under /admin/: overview, lists, case page, replay and bulk replay.

Works without JavaScript (plain links and forms). Every request except the login page needs a
session (a1's `domain.accounts.accounts` sessions); every POST needs the session's CSRF token and, when
the browser names one, our own origin; every change needs the operator role and goes through
the domain's operations (a2), which record the event naming the account.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import Blueprint, g, redirect, render_template, request, url_for
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from bridge.admin import csrf as admin_csrf
from bridge.admin.chart import office_charts
from bridge.admin.labels import (
    BULK_STATUS,
    DELIVERY_STATUS,
    EVENT_KIND,
    PAYMENT_STATUS,
    ROLE,
    SUBMISSION_STATUS,
    TASK_AREA,
    label,
    local_day,
    local_time,
)
from bridge.state import Bridge, current
from domain.accounts.accounts import Actor, Role
from domain.accounts.admin_sessions import (
    check_csrf,
    csrf_token,
    end_session,
    resolve_session,
    start_session,
)
from domain.accounts.logins import LoginRefused, authenticate_password
from domain.accounts.passwords import ScryptParams
from domain.admin import bulk_replay
from domain.admin.case_view import submission_detail
from domain.admin.operations import cancel_delivery, replay_delivery, reroute_delivery
from domain.admin.overview import overview as build_overview
from domain.admin.search import (
    FILTER_KEYS,
    SUBMISSION_STATUSES,
    SubmissionFilter,
    count_replayable,
    failed_deliveries,
    list_submissions,
)
from domain.problems import Problem, msg
from infra.logs import log_event
from store.models import utcnow
from worker.queue import wake_quietly
from worker.queue_status import queue_status

log = logging.getLogger(__name__)

blueprint = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
)

SESSION_COOKIE = "bridge_admin"
LOGIN_COOKIE = "bridge_admin_login"
COOKIE_PATH = "/admin"
PER_PAGE = 50
PAGING = ("page", "per_page")
MAX_USERNAME = 64
MAX_PASSWORD = 1024

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

# What a redirect after an action may say; the query carries a code, never free text.
NOTICES = {
    "replayed": "Die Zustellung wird erneut gesendet.",
    "noop": "Nichts zu tun: die Zustellung wartet bereits auf den Versand.",
    "cancelled": "Die Zustellung wurde abgebrochen.",
    "rerouted": "Die Zustellung geht jetzt an die gewählte Stelle.",
    "bulk-cancelled": "Die Sammel-Wiederholung wurde abgebrochen.",
    "logged-out": "Sie sind abgemeldet.",
    "expired": "Ihre Sitzung ist abgelaufen. Bitte erneut anmelden.",
}

FILTER_LABELS = {
    "reference": "Aktenzeichen",
    "service": "Leistung",
    "municipality": "Kommune",
    "office": "Stelle",
    "status": "Status",
    "from": "Eingang von",
    "to": "Eingang bis",
    "page": "Seite",
    "per_page": "Einträge je Seite",
    "reason": "Grund",
    "office_id": "Stelle",
}


# --- the guard: session, CSRF, origin, headers -------------------------------------------------


def _bridge() -> Bridge:
    return current()


def _own_origins() -> list[str]:
    own = [request.host_url]
    public = _bridge().settings.public_url
    if public:
        own.append(public)
    return own


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _cookie_secure() -> bool:
    """Secure outside loopback: an https public URL, an https request or a remote client."""
    if _bridge().settings.public_url.startswith("https://") or request.is_secure:
        return True
    return not _is_loopback(request.remote_addr)


def _set_cookie(response: Response, name: str, value: str, *, max_age: int, path: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="Lax",
        secure=_cookie_secure(),
    )


def _actor() -> Actor:
    actor = g.get("admin_actor")
    assert isinstance(actor, Actor)
    return actor


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


@blueprint.before_request
def _guard() -> Response | None:
    """Resolve the session; refuse foreign origins and POSTs without the session's token."""
    g.admin_actor = None
    g.admin_csrf = ""
    if request.endpoint == "admin.static":
        return None
    value = request.cookies.get(SESSION_COOKIE, "")
    idle_s = _bridge().settings.admin_idle_minutes * 60
    actor = resolve_session(_bridge().store, value, idle_timeout_s=idle_s) if value else None
    if actor is not None:
        g.admin_actor = actor
        g.admin_session = value
        g.admin_csrf = csrf_token(value)
    if request.method == "POST" and not admin_csrf.origin_allowed(
        request.headers.get("Origin"), request.headers.get("Referer"), _own_origins()
    ):
        log_event(log, "admin.refused", reason="foreign-origin", endpoint=request.endpoint)
        return error_page(
            403,
            "Anfrage abgelehnt",
            "Das Formular kam nicht von dieser Seite. Bitte die Seite neu laden und erneut senden.",
        )
    if request.endpoint == "admin.login":
        return None
    if actor is None:
        if request.method == "POST":
            log_event(log, "admin.refused", reason="no-session", endpoint=request.endpoint)
            return error_page(
                403,
                "Nicht angemeldet",
                "Ihre Sitzung ist abgelaufen; es wurde nichts geändert. Bitte erneut anmelden.",
            )
        target = url_for("admin.login", next=request.full_path.rstrip("?"))
        if value:
            target = url_for("admin.login", next=request.full_path.rstrip("?"), hinweis="expired")
        return redirect(target, 303)
    if request.method == "POST" and not check_csrf(value, request.form.get(admin_csrf.FIELD, "")):
        log_event(
            log,
            "admin.refused",
            reason="csrf",
            endpoint=request.endpoint,
            account_id=actor.account_id,
        )
        return error_page(
            403,
            "Anfrage abgelehnt",
            "Das Formular ist ungültig oder veraltet (Sicherheitsprüfung). Es wurde nichts "
            "geändert. Bitte die Seite neu laden und erneut senden.",
        )
    return None


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
        raise exc
    return error_page(code, _HTTP_TITLES.get(code, exc.name), "Es wurde nichts geändert.")


def _forbidden(action: str) -> Response:
    """The 403 page for a viewer's POST, with the refusal in the log (account id, no names)."""
    actor = _actor()
    log_event(
        log,
        "admin.refused",
        reason="role",
        action=action,
        account_id=actor.account_id,
        role=actor.role,
    )
    return error_page(
        403,
        "Keine Berechtigung",
        "Für diese Aktion ist die Rolle „Bedienen“ (operator) nötig. Es wurde nichts geändert.",
    )


# --- what every template sees -------------------------------------------------------------------


def _actor_label(text: str) -> str:
    kind, _, name = text.partition(":")
    if kind == "account" and name:
        return name
    if kind == "token" and name:
        return f"API-Schlüssel {name}"
    return "System"


@blueprint.context_processor
def _template_helpers() -> dict[str, Any]:
    config = _bridge().settings.config
    actor = g.get("admin_actor")

    def office_name(office_id: str) -> str:
        office = config.offices.get(office_id)
        return office.name if office else office_id

    def service_title(service_id: str) -> str:
        service = config.services.get(service_id)
        return service.title if service else service_id

    notice = NOTICES.get(request.args.get("hinweis", ""))
    return {
        "actor": actor,
        "role_label": label(ROLE, actor.role) if actor else "",
        "may_operate": bool(actor and actor.may(Role.OPERATOR)),
        "csrf_token": g.get("admin_csrf", ""),
        "notices": [("ok", notice)] if notice else [],
        "when": local_time,
        "day_label": local_day,
        "submission_status": lambda s: label(SUBMISSION_STATUS, s),
        "delivery_status": lambda s: label(DELIVERY_STATUS, s),
        "payment_status": lambda s: label(PAYMENT_STATUS, s),
        "event_kind": lambda s: label(EVENT_KIND, s),
        "task_area": lambda s: label(TASK_AREA, s),
        "number": lambda n: f"{n:g}".replace(".", ","),
        "actor_label": _actor_label,
        "office_name": office_name,
        "service_title": service_title,
    }


# --- login and logout ---------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only our own admin pages are places to go after the login (no open redirect)."""
    if (
        target
        and target.startswith("/admin/")
        and not target.startswith("//")
        and "\\" not in target
    ):
        return target
    return url_for("admin.overview")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """The login form; a successful POST opens a session and goes where the clerk wanted to go."""
    secret = request.cookies.get(LOGIN_COOKIE, "")
    if request.method == "GET":
        if g.get("admin_actor") is not None:
            return redirect(_safe_next(request.args.get("next")), 303)
        return _login_form(secret, "", "", request.args.get("next", ""), 200)
    next_url = request.form.get("next", "")
    username = request.form.get("username", "")[:MAX_USERNAME]
    password = request.form.get("password", "")
    if not check_csrf(secret, request.form.get(admin_csrf.FIELD, "")):
        log_event(log, "admin.refused", reason="csrf", endpoint="admin.login")
        return _login_form(
            "",
            "Das Anmeldeformular ist abgelaufen (Sicherheitsprüfung). Bitte erneut anmelden.",
            username,
            next_url,
            403,
        )
    if not username or not password or len(password) > MAX_PASSWORD:
        return _login_form(secret, "Benutzername oder Passwort falsch.", username, next_url, 401)
    store = _bridge().store
    try:
        actor = authenticate_password(
            store,
            username,
            password,
            remote_addr=request.remote_addr,
            kdf=ScryptParams(n=_bridge().settings.password_scrypt_n),
        )
    except LoginRefused as refused:
        if refused.reason == LoginRefused.LOCKED:
            minutes = max(1, -(-refused.retry_after_s // 60))
            text = f"Zu viele Fehlversuche. Bitte in {minutes} Minuten erneut versuchen."
            return _login_form(secret, text, username, next_url, 429, refused.retry_after_s)
        return _login_form(secret, "Benutzername oder Passwort falsch.", username, next_url, 401)
    old = request.cookies.get(SESSION_COOKIE, "")
    if old:
        end_session(store, old)
    ttl_s = _bridge().settings.admin_session_hours * 3600
    value = start_session(store, actor, ttl_s=ttl_s, remote_addr=request.remote_addr)
    response = redirect(_safe_next(next_url), 303)
    _set_cookie(response, SESSION_COOKIE, value, max_age=ttl_s, path=COOKIE_PATH)
    response.delete_cookie(LOGIN_COOKIE, path=url_for("admin.login"))
    return response


def _login_form(
    secret: str, error: str, username: str, next_url: str, status: int, retry_after: int = 0
) -> Response:
    # A fresh login secret when the browser has none (first visit, or it was refused).
    fresh = not secret
    secret = secret or admin_csrf.new_secret()
    g.admin_csrf = csrf_token(secret)
    body = render_template(
        "admin/login.html",
        error=error,
        username=username,
        next_url=next_url if next_url.startswith("/admin/") else "",
    )
    response = Response(body, status=status, mimetype="text/html")
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    if fresh:
        _set_cookie(response, LOGIN_COOKIE, secret, max_age=3600, path=url_for("admin.login"))
    return response


@blueprint.post("/logout")
def logout() -> Response:
    """End the session and go back to the login page."""
    end_session(_bridge().store, g.admin_session)
    response = redirect(url_for("admin.login", hinweis="logged-out"), 303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


# --- reading pages ------------------------------------------------------------------------------


def _running_bulk() -> bulk_replay.BulkReplayView | None:
    """The bulk replay running now, if any (shown on the overview and the failures page)."""
    return next((v for v in bulk_replay.latest(_bridge().store, 1) if v.active), None)


@blueprint.get("/")
def overview() -> str:
    """Counts by status, the failure chart per office over 14 days, queue and workers."""
    bridge = _bridge()
    config = bridge.settings.config
    queue = queue_status(bridge.redis)
    data = build_overview(
        bridge.store, now=utcnow(), days=14, queue_depth=queue.depth, live_workers=queue.workers
    )
    names = {oid: o.name for oid, o in config.offices.items()}
    charts = office_charts(data.days, data.failures_per_office_day, names)
    return render_template(
        "admin/overview.html",
        nav="overview",
        failed_total=data.deliveries_by_status.get("failed", 0),
        submission_counts=_counts(data.submissions_by_status, SUBMISSION_STATUS),
        delivery_counts=_counts(data.deliveries_by_status, DELIVERY_STATUS),
        charts=charts,
        days=data.days,
        per_office=data.failures_per_office_day,
        queue_depth=data.queue_depth,
        live_workers=data.live_workers,
        oldest=data.oldest_pending,
        running_bulk=_running_bulk(),
    )


def _counts(counts: Mapping[str, int], names: Mapping[str, str]) -> list[tuple[str, str, int]]:
    """(status, German name, count) in the order of `names`, then any status it lacks."""
    order = [s for s in names if s in counts] + sorted(s for s in counts if s not in names)
    return [(s, label(dict(names), s), counts[s]) for s in order]


def _number(name: str, default: int) -> int:
    """A page number or size from the query (its range is checked by the domain's paging)."""
    raw = request.args.get(name, str(default))
    if not raw.isascii() or not raw.isdigit() or len(raw) > 7:
        raise Problem(
            400,
            "bad-filter",
            msg("Der Filter ist ungültig.", "The filter is invalid."),
            msg(
                "Seite und Einträge je Seite müssen ganze Zahlen sein.",
                "Page and page size must be whole numbers.",
            ),
        )
    return int(raw)


def _filter(args: Mapping[str, Any], *, extra: tuple[str, ...]) -> SubmissionFilter:
    return SubmissionFilter.from_args(args, _bridge().settings.config, extra=extra)


def _filter_choices() -> dict[str, Any]:
    config = _bridge().settings.config
    return {
        "services": sorted(((s.id, s.title) for s in config.services.values()), key=lambda x: x[1]),
        "municipalities": sorted(
            ((m.ags, m.name) for m in config.municipalities.values()), key=lambda x: x[1]
        ),
        "offices": sorted(((o.id, o.name) for o in config.offices.values()), key=lambda x: x[1]),
        "statuses": [(s, label(SUBMISSION_STATUS, s)) for s in SUBMISSION_STATUSES],
    }


def _page_url(endpoint: str, flt: SubmissionFilter) -> Any:
    size = request.args.get("per_page")
    sized = {"per_page": size} if size else {}

    def page_url(number: int) -> str:
        return url_for(endpoint) + "?" + urlencode({**flt.as_args(), **sized, "page": number})

    return page_url


@blueprint.get("/antraege")
def submissions() -> str:
    """The submissions, newest first, filtered by a GET form, 50 a page."""
    flt = _filter(request.args, extra=PAGING)
    page = list_submissions(
        _bridge().store,
        flt,
        _bridge().settings.config,
        page=_number("page", 1),
        per_page=_number("per_page", PER_PAGE),
    )
    return render_template(
        "admin/submissions.html",
        nav="submissions",
        page=page,
        args=_form_args(flt),
        page_url=_page_url("admin.submissions", flt),
        **_filter_choices(),
    )


def _form_args(flt: SubmissionFilter) -> dict[str, str]:
    """The filter as the form's fields show it (the municipality by its AGS)."""
    return flt.as_args()


@blueprint.get("/fehler")
def failures() -> str:
    """The dead-letter list with the last error, one replay button per row and a bulk action."""
    flt = _filter(request.args, extra=PAGING)
    if flt.status is not None:
        # The list is failed deliveries; a submission status would silently narrow it.
        flt = dataclasses.replace(flt, status=None)
    store = _bridge().store
    page = failed_deliveries(
        store, flt, page=_number("page", 1), per_page=_number("per_page", PER_PAGE)
    )
    config = _bridge().settings.config
    by_office = []
    if flt.office is None:
        for office_id, office in sorted(config.offices.items(), key=lambda x: x[1].name):
            count = count_replayable(store, dataclasses.replace(flt, office=office_id))
            if count:
                by_office.append((office_id, office.name, count))
    return render_template(
        "admin/failures.html",
        nav="failures",
        page=page,
        args=_form_args(flt),
        filter_args=flt.as_args(),
        by_office=by_office,
        running_bulk=_running_bulk(),
        back_url=request.full_path.rstrip("?"),
        page_url=_page_url("admin.failures", flt),
        **_filter_choices(),
    )


@blueprint.get("/antraege/<reference>")
def case(reference: str) -> str:
    """One case: its deliveries with actions, its payment and its timeline."""
    config = _bridge().settings.config
    detail = submission_detail(_bridge().store, config, reference[:40])
    if detail is None:
        raise Problem(
            404,
            "unknown-submission",
            msg("Diesen Antrag gibt es nicht.", "No such submission."),
            msg(
                "Bitte das Aktenzeichen prüfen (z. B. NA-2026-000123).",
                "Please check the reference (e.g. NA-2026-000123).",
            ),
        )
    alternatives: dict[str, list[tuple[str, str]]] = {}
    for d in detail.deliveries:
        alternatives[d.id] = sorted(
            (
                (oid, o.name)
                for oid, o in config.offices.items()
                if o.task_area == d.task_area and oid != d.office
            ),
            key=lambda x: x[1],
        )
    return render_template(
        "admin/case.html",
        nav="submissions",
        case=detail,
        alternatives=alternatives,
        office_of={d.id: d.office_name for d in detail.deliveries},
    )


# --- actions --------------------------------------------------------------------------------


def _delivery_of_case(reference: str, delivery_id: str) -> None:
    """404 unless `delivery_id` is one of the case's deliveries (the URL names both)."""
    detail = submission_detail(_bridge().store, _bridge().settings.config, reference[:40])
    if detail is None or delivery_id not in {d.id for d in detail.deliveries}:
        raise Problem(
            404,
            "unknown-delivery",
            msg("Diese Zustellung gibt es nicht.", "No such delivery."),
            msg("Es wurde nichts geändert.", "Nothing was changed."),
        )


def _after_action(reference: str, notice: str) -> Response:
    """Back to the failures list the clerk came from (with its filter), else to the case."""
    back = urlsplit(request.form.get("back", ""))
    if back.path == url_for("admin.failures") and not back.netloc and not back.scheme:
        query = [(k, v) for k, v in parse_qsl(back.query) if k in FILTER_KEYS + PAGING]
        query.append(("hinweis", notice))
        return redirect(back.path + "?" + urlencode(query), 303)
    return redirect(url_for("admin.case", reference=reference, hinweis=notice), 303)


@blueprint.post("/antraege/<reference>/zustellungen/<delivery_id>/erneut-senden")
def replay(reference: str, delivery_id: str) -> Response:
    """Send one failed delivery again (operators only)."""
    if not _actor().may(Role.OPERATOR):
        return _forbidden("replay")
    _delivery_of_case(reference, delivery_id)
    outcome = replay_delivery(
        _bridge().store, delivery_id, _actor(), request.form.get("reason", "")
    )
    wake_quietly(_bridge().redis, outcome.wake, log=log)
    return _after_action(reference, "replayed" if outcome.changed else "noop")


@blueprint.post("/antraege/<reference>/zustellungen/<delivery_id>/abbrechen")
def cancel(reference: str, delivery_id: str) -> Response:
    """Stop one delivery for good, with a reason (operators only)."""
    if not _actor().may(Role.OPERATOR):
        return _forbidden("cancel")
    _delivery_of_case(reference, delivery_id)
    cancel_delivery(_bridge().store, delivery_id, _actor(), request.form.get("reason", ""))
    return _after_action(reference, "cancelled")


@blueprint.post("/antraege/<reference>/zustellungen/<delivery_id>/umleiten")
def reroute(reference: str, delivery_id: str) -> Response:
    """Send the case to another office of the same task area, with a reason (operators only)."""
    if not _actor().may(Role.OPERATOR):
        return _forbidden("reroute")
    _delivery_of_case(reference, delivery_id)
    outcome = reroute_delivery(
        _bridge().store,
        _bridge().settings.config,
        delivery_id,
        request.form.get("office", "")[:64],
        _actor(),
        request.form.get("reason", ""),
    )
    wake_quietly(_bridge().redis, outcome.wake, log=log)
    return _after_action(reference, "rerouted")


BULK_FORM_KEYS = (admin_csrf.FIELD, "reason", "expected")


@blueprint.get("/fehler/alle-erneut-senden")
def bulk_confirm() -> str | Response:
    """The confirmation of a bulk replay: the exact count (the dry run) and a reason field."""
    if not _actor().may(Role.OPERATOR):
        return _forbidden("bulk-replay")
    flt = _filter(request.args, extra=())
    return _confirmation(flt, count_replayable(_bridge().store, flt), 200)


def _confirmation(flt: SubmissionFilter, count: int, status: int, notice: str = "") -> Response:
    config = _bridge().settings.config
    shown: list[tuple[str, str]] = []
    for key, value in flt.as_args().items():
        if key == "service" and value in config.services:
            value = config.services[value].title
        elif key == "office" and value in config.offices:
            value = config.offices[value].name
        elif key == "municipality":
            town = config.municipality_by_ags(value)
            value = town.name if town else value
        elif key == "status":
            value = label(SUBMISSION_STATUS, value)
        shown.append((FILTER_LABELS.get(key, key), value))
    body = render_template(
        "admin/bulk_confirm.html",
        nav="failures",
        count=count,
        filter_args=flt.as_args(),
        filter_labels=shown,
        changed_notice=notice,
    )
    return Response(body, status=status, mimetype="text/html")


@blueprint.post("/fehler/alle-erneut-senden")
def bulk_start() -> Response:
    """Start the bulk replay the clerk confirmed, then show its progress (operators only).

    When the count changed since the confirmation (new failures, or someone else replayed
    some), the confirmation is shown again with the new count instead of starting.
    """
    if not _actor().may(Role.OPERATOR):
        return _forbidden("bulk-replay")
    bridge = _bridge()
    flt = _filter(request.form, extra=BULK_FORM_KEYS)
    count = count_replayable(bridge.store, flt)
    if request.form.get("expected", "") != str(count):
        return _confirmation(
            flt,
            count,
            409,
            "Die Anzahl hat sich seit der Bestätigung geändert. Bitte die neue Anzahl prüfen.",
        )
    view, offices = bulk_replay.start(
        bridge.store,
        bridge.settings.config,
        flt,
        _actor(),
        request.form.get("reason", ""),
        rate_per_office=bridge.settings.replay_rate_per_office,
    )
    wake_quietly(bridge.redis, offices, log=log)
    return redirect(url_for("admin.bulk_progress", job_id=view.id), 303)


def _bulk_or_404(job_id: int) -> bulk_replay.BulkReplayView:
    view = bulk_replay.get(_bridge().store, job_id)
    if view is None:
        raise bulk_replay.unknown_replay(job_id)
    return view


@blueprint.get("/sammel/<int:job_id>")
def bulk_progress(job_id: int) -> str:
    """Processed / total / failed of a bulk replay; refreshes itself while it runs."""
    view = _bulk_or_404(job_id)
    return render_template(
        "admin/bulk_progress.html",
        nav="failures",
        job=view,
        running=view.active,
        state_label=label(BULK_STATUS, view.status),
    )


@blueprint.post("/sammel/<int:job_id>/abbrechen")
def bulk_cancel(job_id: int) -> Response:
    """Stop a running bulk replay; what was not sent yet goes back to the failed list."""
    if not _actor().may(Role.OPERATOR):
        return _forbidden("bulk-cancel")
    _bulk_or_404(job_id)
    bulk_replay.cancel(_bridge().store, job_id, _actor(), request.form.get("reason", ""))
    return redirect(url_for("admin.bulk_progress", job_id=job_id, hinweis="bulk-cancelled"), 303)

"""Who is on the admin page: login, logout and the guard in front of every page.

Every request except the login page needs a session (`domain.accounts.admin_sessions`); every
POST needs the session's CSRF token and, when the browser names one, our own origin.
"""

from __future__ import annotations

import logging
import re

from flask import g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bridge.admin import csrf as admin_csrf
from bridge.admin.blueprint import blueprint, error_page
from bridge.proxy import client_address, client_on_loopback
from bridge.state import current
from domain.accounts.admin_sessions import (
    check_csrf,
    csrf_token,
    end_session,
    resolve_session,
    start_session,
)
from domain.accounts.logins import LoginRefused, authenticate_password
from domain.accounts.passwords import ScryptParams
from infra.logs import log_event

log = logging.getLogger(__name__)

SESSION_COOKIE = "bridge_admin"
# Pages without a session: the login, and the page of a one-time password link.
PUBLIC_ENDPOINTS = ("admin.login", "admin.password_link")
LOGIN_COOKIE = "bridge_admin_login"
COOKIE_PATH = "/admin"
MAX_USERNAME = 64
MAX_PASSWORD = 1024


def _own_origins() -> list[str]:
    own = [request.host_url]
    public = current().settings.public_url
    if public:
        own.append(public)
    return own


def _cookie_secure() -> bool:
    """Secure outside loopback: an https public URL, an https request or a remote client."""
    if current().settings.public_url.startswith("https://") or request.is_secure:
        return True
    return not client_on_loopback()


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


@blueprint.before_request
def _guard() -> Response | None:
    """Resolve the session; refuse foreign origins and POSTs without the session's token."""
    g.admin_actor = None
    g.admin_csrf = ""
    if request.endpoint == "admin.static":
        return None
    value = request.cookies.get(SESSION_COOKIE, "")
    idle_s = current().settings.admin_idle_minutes * 60
    actor = resolve_session(current().store, value, idle_timeout_s=idle_s) if value else None
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
    if request.endpoint in PUBLIC_ENDPOINTS:
        # Their own credential: the login form's cookie, the one-time link (checked there).
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


# A plain path on our admin page: no scheme, host, backslash, control character or "..".
_SAFE_NEXT = re.compile(r"/admin/[A-Za-z0-9._~/?=&%+,;:@!$'()*-]*\Z")


def _is_safe_next(target: str | None) -> bool:
    """Whether `target` is one of our own admin pages (no open redirect, no header injection)."""
    # A browser reads "%2e" as "." in a path, so "/admin/%2e%2e/x" is a way up too.
    path = f"{target}/".lower().replace("%2e", ".")
    return bool(target and _SAFE_NEXT.match(target) and "/../" not in path)


def _safe_next(target: str | None) -> str:
    """Where to go after the login: `target` when it is safe, else the overview."""
    if target and _is_safe_next(target):
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
    store = current().store
    try:
        actor = authenticate_password(
            store,
            username,
            password,
            remote_addr=client_address(),
            kdf=ScryptParams(n=current().settings.password_scrypt_n),
        )
    except LoginRefused as refused:
        if refused.reason == LoginRefused.LOCKED:
            text = str(refused.message)
            return _login_form(secret, text, username, next_url, 429, refused.retry_after_s)
        if refused.reason == LoginRefused.BUSY:
            text = str(refused.message)
            return _login_form(secret, text, username, next_url, 429, refused.retry_after_s)
        return _login_form(secret, "Benutzername oder Passwort falsch.", username, next_url, 401)
    old = request.cookies.get(SESSION_COOKIE, "")
    if old:
        end_session(store, old)
    ttl_s = current().settings.admin_session_hours * 3600
    value = start_session(store, actor, ttl_s=ttl_s, remote_addr=client_address())
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
        next_url=next_url if _is_safe_next(next_url) else "",
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
    end_session(current().store, g.admin_session)
    response = redirect(url_for("admin.login", hinweis="logged-out"), 303)
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response

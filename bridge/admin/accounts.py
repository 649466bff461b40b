"""Accounts and API tokens on the admin page, for admins: create, role, offices, unlock, deactivate.

Every page and action here needs the admin role (others get a German 403 page and nothing
changes); every POST passes the session guard's CSRF and origin checks; every change is an
audit event written by the domain in the same transaction (`domain.accounts`). Secrets are
shown once, on the answer to the POST that made them, never stored in clear: a new account's
holder sets the password through a one-time link (`domain.accounts.password_links`), a new
token is shown once. The link's own page (`/admin/passwort/<link>`) is the one page here
without a session: the link is the credential, and its form's CSRF token derives from it.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import NoReturn

from flask import g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bridge.admin import csrf as admin_csrf
from bridge.admin.blueprint import NOTICES, actor, blueprint, error_page
from bridge.admin.labels import ROLE, label, local_time
from bridge.state import current
from domain.accounts.accounts import (
    NO_PASSWORD,
    AccountError,
    Role,
    create_account,
    deactivate,
    get_account,
    list_accounts,
    reactivate,
    set_role,
    unlock,
)
from domain.accounts.admin_sessions import check_csrf, csrf_token
from domain.accounts.api_tokens import create_token, list_tokens, revoke_token
from domain.accounts.password_links import create_link, holder_of, use_link
from domain.accounts.scopes import (
    all_account_offices,
    all_token_offices,
    check_offices,
    set_account_offices,
)
from domain.problems import Problem, msg
from infra.logs import log_event
from store.accounts import Account
from store.models import utcnow

log = logging.getLogger(__name__)

NOTICES.update(
    {
        "role-set": "Die Rolle wurde geändert.",
        "offices-set": "Die Stellen des Kontos wurden festgelegt.",
        "unlocked": "Das Konto ist entsperrt.",
        "deactivated": "Das Konto ist deaktiviert; seine Sitzungen und API-Schlüssel gelten nicht mehr.",
        "reactivated": "Das Konto ist wieder aktiv; die Anmeldung geht mit dem bisherigen Passwort.",
        "revoked": "Der API-Schlüssel ist widerrufen.",
        "password-set": "Ihr Passwort ist gesetzt. Bitte melden Sie sich jetzt an.",
    }
)

_STATUS = {"invalid": 422, "unknown": 404, "exists": 409, "last-admin": 409}
MAX_DAYS = 3650
MAX_FIELD = 200


def _refused() -> Response:
    """The 403 page for anyone but an admin, with the refusal in the log."""
    who = actor()
    log_event(
        log,
        "admin.refused",
        reason="role",
        action=request.endpoint,
        account_id=who.account_id,
        role=who.role,
    )
    return error_page(
        403,
        "Keine Berechtigung",
        "Konten und API-Schlüssel verwaltet nur die Rolle „Verwalten“ (admin). "
        "Es wurde nichts geändert.",
    )


def _fail(error: AccountError) -> NoReturn:
    """An AccountError as the page's problem answer (German, nothing changed)."""
    raise Problem(
        _STATUS.get(error.kind, 409),
        error.kind,
        error.message,
        msg("Es wurde nichts geändert.", "Nothing was changed."),
    )


def _is_admin() -> bool:
    return actor().may(Role.ADMIN)


def _office_choices() -> list[tuple[str, str]]:
    config = current().settings.config
    return sorted(((o.id, o.name) for o in config.offices.values()), key=lambda x: x[1])


def _chosen_offices() -> frozenset[str] | None:
    """The offices a form limits to: None for "Alle Stellen", else the ticked (checked) ones."""
    if request.form.get("scope", "alle") != "auswahl":
        return None
    ticked = [o[:64] for o in request.form.getlist("office")]
    try:
        chosen = check_offices(ticked, current().settings.config.offices)
    except AccountError as exc:
        _fail(exc)
    if not chosen:
        _fail(
            AccountError(
                "invalid",
                msg(
                    "Bitte mindestens eine Stelle ankreuzen oder „Alle Stellen“ wählen.",
                    "Please tick at least one office or choose every office.",
                ),
            )
        )
    return chosen


def _state(account: Account, now: dt.datetime) -> str:
    if not account.active:
        return "Deaktiviert"
    if account.locked_until is not None and account.locked_until > now:
        return "Gesperrt bis " + local_time(account.locked_until)
    if account.password_hash == NO_PASSWORD:
        return "Wartet auf Passwort"
    return "Aktiv"


def _locked(account: Account) -> bool:
    return account.failed_logins > 0 or account.locked_until is not None


def _office_names(ids: list[str] | None) -> str:
    if not ids:
        return "Alle Stellen"
    config = current().settings.config
    return ", ".join(config.offices[o].name if o in config.offices else o for o in ids)


@blueprint.get("/konten")
def accounts() -> str | Response:
    """Every account with role, offices and state, and the form to create one (admins only)."""
    if not _is_admin():
        return _refused()
    offices = all_account_offices(current().store)
    now = utcnow()
    rows = [
        {
            "username": a.username,
            "display_name": a.display_name or "",
            "role": label(ROLE, a.role),
            "offices": _office_names(offices.get(a.id)),
            "state": _state(a, now),
            "last_login": a.last_login_at,
        }
        for a in list_accounts(current().store)
    ]
    return render_template(
        "admin/accounts.html",
        nav="accounts",
        rows=rows,
        roles=[(r, label(ROLE, r)) for r in Role.ALL],
        office_choices=_office_choices(),
    )


def _secret_page(
    title: str, what: str, secret: str, expires: dt.datetime | None, nav: str = "accounts"
) -> Response:
    """The one answer that shows a secret; it is never shown again (and never cached)."""
    body = render_template(
        "admin/secret_once.html",
        nav=nav,
        title=title,
        what=what,
        secret=secret,
        expires=expires,
    )
    return Response(body, status=200, mimetype="text/html")


def _link_url(secret: str) -> str:
    public = current().settings.public_url.rstrip("/")
    path = url_for("admin.password_link", secret=secret)
    return (
        public + path if public else url_for("admin.password_link", secret=secret, _external=True)
    )


@blueprint.post("/konten")
def account_create() -> Response:
    """Create an account without a password and show its one-time link once (admins only)."""
    if not _is_admin():
        return _refused()
    username = request.form.get("username", "")[:64]
    display = request.form.get("display_name", "").strip()[:MAX_FIELD] or None
    role = request.form.get("role", "")[:16]
    offices = _chosen_offices()
    store = current().store
    try:
        account = create_account(
            store, username, None, role, actor=actor(), display_name=display, offices=offices
        )
        secret, expires = create_link(store, account.username, actor=actor())
    except AccountError as exc:
        _fail(exc)
    return _secret_page(
        f"Konto {account.username} angelegt",
        f"Bitte diesen Link an {account.display_name or account.username} geben. Damit setzt "
        "die Person ihr Passwort selbst; er gilt einmal.",
        _link_url(secret),
        expires,
    )


def _account_or_404(username: str) -> Account:
    account = get_account(current().store, username[:64])
    if account is None:
        raise Problem(
            404,
            "unknown",
            msg("Dieses Konto gibt es nicht.", "No such account."),
            msg("Es wurde nichts geändert.", "Nothing was changed."),
        )
    return account


@blueprint.get("/konten/<username>")
def account(username: str) -> str | Response:
    """One account with its actions: role, offices, unlock, password link, deactivate."""
    if not _is_admin():
        return _refused()
    found = _account_or_404(username)
    offices = all_account_offices(current().store).get(found.id)
    return render_template(
        "admin/account.html",
        nav="accounts",
        account=found,
        state=_state(found, utcnow()),
        locked=_locked(found),
        role_label=label(ROLE, found.role),
        own_role_label=label(ROLE, actor().role),
        offices=offices or [],
        office_label=_office_names(offices),
        roles=[(r, label(ROLE, r)) for r in Role.ALL],
        office_choices=_office_choices(),
    )


def _back(username: str, notice: str) -> Response:
    return redirect(url_for("admin.account", username=username, hinweis=notice), 303)


@blueprint.post("/konten/<username>/rolle")
def account_role(username: str) -> Response:
    """Give the account another role (admins only; the last admin keeps the role)."""
    if not _is_admin():
        return _refused()
    found = _account_or_404(username)
    try:
        set_role(current().store, found.username, request.form.get("role", "")[:16], actor=actor())
    except AccountError as exc:
        _fail(exc)
    return _back(found.username, "role-set")


@blueprint.post("/konten/<username>/stellen")
def account_offices(username: str) -> Response:
    """Limit the account to offices, or let it see every office (admins only)."""
    if not _is_admin():
        return _refused()
    found = _account_or_404(username)
    offices = _chosen_offices()
    try:
        set_account_offices(
            current().store,
            found.username,
            offices,
            known=current().settings.config.offices,
            actor=actor(),
        )
    except AccountError as exc:
        _fail(exc)
    return _back(found.username, "offices-set")


@blueprint.post("/konten/<username>/entsperren")
def account_unlock(username: str) -> Response:
    """Lift a lock-out after failed logins (admins only)."""
    if not _is_admin():
        return _refused()
    found = _account_or_404(username)
    unlock(current().store, found.username, actor=actor())
    return _back(found.username, "unlocked")


@blueprint.post("/konten/<username>/passwort-link")
def account_link(username: str) -> Response:
    """A new one-time link with which the holder sets a new password (admins only)."""
    if not _is_admin():
        return _refused()
    found = _account_or_404(username)
    try:
        secret, expires = create_link(current().store, found.username, actor=actor())
    except AccountError as exc:
        _fail(exc)
    return _secret_page(
        f"Passwort-Link für {found.username}",
        "Bitte diesen Link an die Person geben. Damit setzt sie ein neues Passwort; er gilt "
        "einmal, ältere Links dieses Kontos gelten nicht mehr.",
        _link_url(secret),
        expires,
    )


@blueprint.post("/konten/<username>/aktivieren")
def account_reactivate(username: str) -> Response:
    """Let a deactivated account log in again (admins only)."""
    if not _is_admin():
        return _refused()
    found = _account_or_404(username)
    reactivate(current().store, found.username, actor=actor())
    return _back(found.username, "reactivated")


@blueprint.post("/konten/<username>/deaktivieren")
def account_deactivate(username: str) -> Response:
    """Deactivate the account: no login, its sessions and tokens end (admins only)."""
    if not _is_admin():
        return _refused()
    found = _account_or_404(username)
    try:
        deactivate(current().store, found.username, actor=actor())
    except AccountError as exc:
        _fail(exc)
    return _back(found.username, "deactivated")


def _token_state(revoked: bool, expires_at: dt.datetime | None, now: dt.datetime) -> str:
    if revoked:
        return "Widerrufen"
    if expires_at is not None and expires_at <= now:
        return "Abgelaufen"
    return "Gültig"


@blueprint.get("/schluessel")
def tokens() -> str | Response:
    """Every API token (never its secret) with a revoke button, and the form to make one."""
    if not _is_admin():
        return _refused()
    now = utcnow()
    offices = all_token_offices(current().store)
    config = current().settings.config
    rows = []
    for t in list_tokens(current().store):
        if t.office_id is not None:
            scope = "Abruf für " + (
                config.offices[t.office_id].name if t.office_id in config.offices else t.office_id
            )
        else:
            scope = _office_names(offices.get(t.id))
        rows.append(
            {
                "name": t.name,
                "prefix": t.prefix,
                "role": label(ROLE, t.role),
                "scope": scope,
                "state": _token_state(t.revoked_at is not None, t.expires_at, now),
                "active": t.revoked_at is None and (t.expires_at is None or t.expires_at > now),
                "expires_at": t.expires_at,
                "last_used_at": t.last_used_at,
            }
        )
    return render_template(
        "admin/tokens.html",
        nav="tokens",
        rows=rows,
        roles=[(r, label(ROLE, r)) for r in Role.ALL],
        office_choices=_office_choices(),
    )


def _days() -> int:
    raw = request.form.get("days", "365")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw[:6]) <= MAX_DAYS):
        _fail(
            AccountError(
                "invalid",
                msg(
                    f"Die Gültigkeit muss zwischen 1 und {MAX_DAYS} Tagen liegen.",
                    f"The validity must be 1 to {MAX_DAYS} days.",
                ),
            )
        )
    return int(raw)


@blueprint.post("/schluessel")
def token_create() -> Response:
    """Create an API token and show it once (admins only)."""
    if not _is_admin():
        return _refused()
    name = request.form.get("name", "")[:64]
    role = request.form.get("role", "")[:16]
    offices = _chosen_offices()
    expires = utcnow() + dt.timedelta(days=_days())
    try:
        token, clear = create_token(
            current().store, name, role, expires_at=expires, actor=actor(), offices=offices
        )
    except AccountError as exc:
        _fail(exc)
    return _secret_page(
        f"API-Schlüssel {token.name} angelegt",
        "Bitte den Schlüssel jetzt kopieren und sicher ablegen: er wird nur dieses eine Mal "
        "angezeigt und ist nur als Prüfsumme gespeichert.",
        clear,
        expires,
        nav="tokens",
    )


@blueprint.post("/schluessel/<name>/widerrufen")
def token_revoke(name: str) -> Response:
    """Revoke a token at once, with an optional reason (admins only)."""
    if not _is_admin():
        return _refused()
    reason = request.form.get("reason", "").strip()[:500] or None
    try:
        revoke_token(current().store, name[:64], actor=actor(), reason=reason)
    except AccountError as exc:
        _fail(exc)
    return redirect(url_for("admin.tokens", hinweis="revoked"), 303)


@blueprint.route("/passwort/<secret>", methods=["GET", "POST"])
def password_link(secret: str) -> Response:
    """The holder's page of a one-time link: choose the password (no session needed)."""
    store = current().store
    holder = holder_of(store, secret)
    # The form's CSRF token derives from the link, which a forging site does not know.
    g.admin_csrf = csrf_token(secret)
    if holder is None:
        return error_page(
            404,
            "Link ungültig",
            "Dieser Link ist ungültig, abgelaufen oder wurde schon benutzt. Bitte bei der "
            "Verwaltung einen neuen Link anfordern.",
        )
    error = ""
    if request.method == "POST":
        password = request.form.get("password", "")[:1024]
        if not check_csrf(secret, request.form.get(admin_csrf.FIELD, "")):
            error = "Das Formular ist veraltet (Sicherheitsprüfung). Bitte erneut senden."
        elif password != request.form.get("password2", "")[:1024]:
            error = "Die beiden Passwörter stimmen nicht überein."
        else:
            kdf = current().settings.password_kdf
            try:
                use_link(store, secret, password, kdf=kdf)
            except AccountError as exc:
                error = str(exc.message)
            else:
                return redirect(url_for("admin.login", hinweis="password-set"), 303)
    body = render_template(
        "admin/password_link.html", username=holder.username, error=error, secret=secret
    )
    return Response(body, status=422 if error else 200, mimetype="text/html")

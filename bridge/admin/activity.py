"""The activity list on the admin page: who did what, when and why, filterable and paged.

Read from the audit events (`domain.admin.activity`). Any signed-in account sees the actions
on cases (each case's own page shows them to it already); only admins also see logins and
the accounts' and tokens' events, because they are the ones who manage accounts. An account
limited to offices sees the actions on its offices' cases and its own (`scope_of`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import render_template, request, url_for

from bridge.admin.blueprint import actor, blueprint
from bridge.admin.filters import PAGING, PER_PAGE, number
from bridge.admin.labels import ROLE, event_sentence, label
from bridge.state import current
from domain.accounts.accounts import Role
from domain.accounts.scopes import scope_of
from domain.admin.activity import (
    Activity,
    ActivityFilter,
    kinds_for,
    known_actors,
    list_activity,
)

# The lists the CSV export offers (`bridge.admin.export`), by the file name's stem.
EXPORTED_LIST = {
    "fehlgeschlagene-zustellungen": "Fehlgeschlagene Zustellungen",
    "antraege": "Anträge",
}


def kind_label(kind: str) -> str:
    """The German name of a kind of action: the history's own (`labels.EVENT_KIND`)."""
    return event_sentence(kind)


def actor_name(text: str) -> str:
    """Who acted, as clerks read it: the user name, an API key by name, or the command line."""
    kind, _, name = text.partition(":")
    if kind == "account" and name:
        return name
    if kind == "token" and name:
        return f"API-Schlüssel {name}"
    if kind == "cli" and name:
        return f"Befehlszeile ({name})"
    if kind == "office" and name:
        office = current().settings.config.offices.get(name)
        return f"Stelle {office.name if office else name}"
    return "System"


def _office(office_id: object) -> str:
    office = current().settings.config.offices.get(str(office_id))
    return office.name if office else str(office_id)


def details(item: Activity) -> str:
    """What the action concerned, in a short German phrase (ids and names, no personal data)."""
    d = item.detail
    if item.kind == "delivery.rerouted":
        return f"von {_office(d.get('from_office'))} an {_office(d.get('to_office'))}"
    if item.kind.startswith("delivery.") and d.get("office"):
        return f"an {_office(d.get('office'))}"
    if item.kind == "admin.bulk_replay.started":
        return f"Nr. {d.get('bulk_replay', '?')}, {d.get('total', '?')} Zustellungen"
    if item.kind == "admin.bulk_replay.cancelled":
        return f"Nr. {d.get('bulk_replay', '?')}, {d.get('withdrawn', '?')} zurückgenommen"
    if item.kind == "account.role_set":
        old, new = label(ROLE, d.get("old_role")), label(ROLE, d.get("new_role"))
        return f"Konto {d.get('account', '?')}: {old} → {new}"
    if item.kind == "account.created":
        return f"Konto {d.get('account', '?')}, Rolle {label(ROLE, d.get('new_role'))}"
    if item.kind == "account.offices_set":
        offices = d.get("new_offices")
        names = ", ".join(_office(o) for o in offices) if offices else "alle Stellen"
        return f"Konto {d.get('account', '?')}: {names}"
    if item.kind == "admin.exported":
        rows = d.get("rows", "?")
        return f"{EXPORTED_LIST.get(str(d.get('list')), 'Liste')}, {rows} Zeile{'' if rows == 1 else 'n'}"
    if item.kind.startswith("account.") and d.get("account"):
        return f"Konto {d.get('account')}"
    if item.kind.startswith("token.") and d.get("token"):
        return f"Schlüssel {d.get('token')}"
    return ""


@blueprint.get("/aktivitaet")
def activity() -> str:
    """Who did what, newest first, filtered by a GET form, 50 a page."""
    signed_in = actor()
    kinds = kinds_for(signed_in.role)
    flt = ActivityFilter.from_args(request.args, kinds, extra=PAGING)
    store = current().store
    scope = scope_of(signed_in)
    page = list_activity(
        store,
        flt,
        kinds,
        scope=scope,
        own=signed_in.label,
        page=number("page", 1),
        per_page=number("per_page", PER_PAGE),
    )
    size = request.args.get("per_page")
    sized = {"per_page": size} if size else {}

    def page_url(n: int) -> str:
        return url_for("admin.activity") + "?" + urlencode({**flt.as_args(), **sized, "page": n})

    admin = signed_in.may(Role.ADMIN)
    actors = known_actors(store, with_tokens=admin, kinds=kinds, scope=scope, own=signed_in.label)
    if flt.actor is not None and flt.actor not in actors:
        actors.append(flt.actor)
    choices: dict[str, Any] = {
        "kinds": [(k, kind_label(k)) for k in kinds],
        "actors": [(a, actor_name(a)) for a in actors],
    }
    return render_template(
        "admin/activity.html",
        nav="activity",
        page=page,
        args=flt.as_args(),
        page_url=page_url,
        kind_label=kind_label,
        actor_name=actor_name,
        details=details,
        with_accounts=admin,
        **choices,
    )

"""The case filter as the admin page reads it from a query or a form, with its paging and choices."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from flask import g, request, url_for

from bridge.admin.labels import SUBMISSION_STATUS, label
from bridge.state import current
from domain.accounts.accounts import Actor
from domain.accounts.scopes import EVERYTHING, scope_of
from domain.admin.search import SUBMISSION_STATUSES, SubmissionFilter
from domain.problems import Problem, msg

PER_PAGE = 50
PAGING = ("page", "per_page")

# The German names of the filter's fields, for error pages and the bulk confirmation.
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


def number(name: str, default: int) -> int:
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


def read_filter(args: Mapping[str, Any], *, extra: tuple[str, ...]) -> SubmissionFilter:
    """The filter in `args`, checked against the configuration; `extra` keys are allowed too."""
    return SubmissionFilter.from_args(args, current().settings.config, extra=extra)


def filter_choices() -> dict[str, Any]:
    """The filter form's choices: services, towns and offices by name, the statuses in German.

    An account limited to offices is offered only its own offices.
    """
    config = current().settings.config
    signed_in = g.get("admin_actor")
    scope = scope_of(signed_in) if isinstance(signed_in, Actor) else EVERYTHING
    return {
        "services": sorted(((s.id, s.title) for s in config.services.values()), key=lambda x: x[1]),
        "municipalities": sorted(
            ((m.ags, m.name) for m in config.municipalities.values()), key=lambda x: x[1]
        ),
        "offices": sorted(
            ((o.id, o.name) for o in config.offices.values() if scope.covers(o.id)),
            key=lambda x: x[1],
        ),
        "statuses": [(s, label(SUBMISSION_STATUS, s)) for s in SUBMISSION_STATUSES],
    }


def page_url(endpoint: str, flt: SubmissionFilter) -> Callable[[int], str]:
    """The link to page n of `endpoint`'s list with the same filter and page size."""
    size = request.args.get("per_page")
    sized = {"per_page": size} if size else {}

    def url_of(page: int) -> str:
        return url_for(endpoint) + "?" + urlencode({**flt.as_args(), **sized, "page": page})

    return url_of


def form_args(flt: SubmissionFilter) -> dict[str, str]:
    """The filter as the form's fields show it (the municipality by its AGS)."""
    return flt.as_args()

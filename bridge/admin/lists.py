"""The admin page's lists: the submissions with their filter, and the failed deliveries."""

from __future__ import annotations

import dataclasses

from flask import render_template, request

from bridge.admin.blueprint import actor, blueprint
from bridge.admin.bulk import running_bulk
from bridge.admin.filters import (
    PAGING,
    PER_PAGE,
    filter_choices,
    form_args,
    number,
    page_url,
    read_filter,
)
from bridge.admin.office_state import office_states
from bridge.state import current
from domain.admin.search import failed_deliveries, list_submissions


@blueprint.get("/antraege")
def submissions() -> str:
    """The submissions, newest first, filtered by a GET form, 50 a page."""
    flt = read_filter(request.args, extra=PAGING)
    page = list_submissions(
        current().store,
        flt,
        current().settings.config,
        actor=actor(),
        page=number("page", 1),
        per_page=number("per_page", PER_PAGE),
    )
    return render_template(
        "admin/submissions.html",
        nav="submissions",
        page=page,
        args=form_args(flt),
        page_url=page_url("admin.submissions", flt),
        **filter_choices(),
    )


@blueprint.get("/fehler")
def failures() -> str:
    """The dead-letter list with the last error, one replay button per row and a bulk action."""
    flt = read_filter(request.args, extra=PAGING)
    if flt.status is not None:
        # The list is failed deliveries; a submission status would silently narrow it.
        flt = dataclasses.replace(flt, status=None)
    store = current().store
    page = failed_deliveries(
        store, flt, actor=actor(), page=number("page", 1), per_page=number("per_page", PER_PAGE)
    )
    return render_template(
        "admin/failures.html",
        nav="failures",
        page=page,
        args=form_args(flt),
        filter_args=flt.as_args(),
        by_office=office_states(flt, actor()),
        running_bulk=running_bulk(),
        back_url=request.full_path.rstrip("?"),
        page_url=page_url("admin.failures", flt),
        **filter_choices(),
    )

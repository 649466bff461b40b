"""Answers: problem+json in the caller's language, JSON documents, whether the caller wants HTML."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, request

from domain.problems import Lang, Problem

#: Accept headers that rank JSON at least as high as HTML: none at all, curl's default, or
#: JSON alone (what senders such as Formcycle's webhook send), decided without parsing them.
_NO_PREFERENCE = frozenset({"", "*/*", "application/json"})


def language() -> Lang:
    """German unless the caller prefers English (regional tags such as de-AT count as German)."""
    quality: dict[str, float] = {"de": 0.0, "en": 0.0}
    for tag, q in request.accept_languages:
        primary = tag.split("-", 1)[0].split("_", 1)[0].lower()
        if primary in quality:
            quality[primary] = max(quality[primary], q)
    return "en" if quality["en"] > quality["de"] else "de"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer, UTF-8, without escaping umlauts."""
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def problem_response(problem: Problem) -> Response:
    """The RFC 9457 answer for a problem."""
    lang = language()
    response = Response(
        json.dumps(problem.body(lang, instance=request.path), ensure_ascii=False),
        status=problem.status,
        mimetype="application/problem+json",
        headers=problem.headers,
    )
    response.headers["Content-Language"] = lang
    return response


def wants_html() -> bool:
    """Whether the caller asked for HTML (Formcycle showing our answer to the citizen)."""
    if request.headers.get("Accept", "").strip() in _NO_PREFERENCE:
        return False  # what matching the header would conclude, without parsing it
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "text/html"
        and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]
    )


def forbid_framing(response: Response) -> Response:
    """An HTML answer may not be shown inside another site's frame (clickjacking).

    Both headers: `frame-ancestors` for current browsers, X-Frame-Options for older ones. A
    page's own Content-Security-Policy (the admin page's) is kept and only gains the directive.
    """
    if response.mimetype != "text/html":
        return response
    response.headers.setdefault("X-Frame-Options", "DENY")
    policy = response.headers.get("Content-Security-Policy")
    if policy is None:
        response.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
    elif "frame-ancestors" not in policy:
        response.headers["Content-Security-Policy"] = (
            f"{policy.rstrip('; ')}; frame-ancestors 'none'"
        )
    return response

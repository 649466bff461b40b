"""The application's assembly behind `bridge.create_app`: blueprints and error handlers."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from bridge.admin import web as admin_web
from bridge.admin.blueprint import app_error_page, is_admin_path
from bridge.api import access, inbox
from bridge.api import admin as admin_api
from bridge.api import status as api
from bridge.api import tokens as tokens_api
from bridge.intake import fit_connect as fit_connect_callbacks
from bridge.intake import webhooks
from bridge.ops import health, metrics
from bridge.payments import routes as payments
from bridge.proxy import install as install_proxy_fix
from bridge.respond import forbid_framing, problem_response
from bridge.state import Bridge
from domain.problems import Problem, msg
from domain.settings import Settings
from integrations.checks import checked


def _build_app(settings: Settings) -> Flask:
    # Private so that `bridge.create_app` stays the one factory; it reads the environment
    # and sets up the logs when no settings are given.
    settings = checked(settings)
    app = Flask(__name__)
    # Werkzeug refuses larger bodies itself; our own checks give the German problem answer.
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes, JSON_SORT_KEYS=False)
    Bridge.from_settings(settings).init_app(app)
    access.warn_legacy_tokens(settings)
    app.register_blueprint(webhooks.blueprint)
    app.register_blueprint(fit_connect_callbacks.blueprint)
    app.register_blueprint(api.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(metrics.blueprint)
    app.register_blueprint(inbox.blueprint)
    app.register_blueprint(payments.blueprint)
    app.register_blueprint(tokens_api.blueprint)
    app.register_blueprint(admin_web.blueprint)
    app.register_blueprint(admin_api.blueprint)
    # Every page, whichever blueprint or error handler made it: the pay and confirmation
    # pages as much as the admin page.
    app.after_request(forbid_framing)
    app.register_error_handler(Problem, _on_problem)
    app.register_error_handler(HTTPException, _on_http_error)
    app.register_error_handler(Exception, _on_unexpected)
    # Last, so it wraps the whole app: every rule below sees the client, not the proxy.
    install_proxy_fix(app, settings.proxy_hops, settings.trusted_proxies)
    return app


def _on_problem(problem: Problem) -> Response:
    return problem_response(problem)


_GENERIC: dict[int, tuple[str, str]] = {
    400: ("Die Anfrage ist fehlerhaft.", "Bad request."),
    404: ("Nicht gefunden.", "Not found."),
    405: ("Diese Methode ist hier nicht erlaubt.", "Method not allowed."),
    413: ("Die Anfrage ist zu groß.", "The request is too large."),
}


def _on_http_error(exc: HTTPException) -> BaseResponse:
    code = exc.code or 500
    if is_admin_path(request.path):
        return app_error_page(code)
    de, en = _GENERIC.get(code, (exc.name, exc.name))
    problem = Problem(code, exc.name.lower().replace(" ", "-"), msg(de, en))
    response = problem_response(problem)
    if code == 405 and exc.get_response().headers.get("Allow"):
        response.headers["Allow"] = exc.get_response().headers["Allow"]
    return response


def _on_unexpected(exc: Exception) -> BaseResponse:
    import logging

    from infra.logs import log_event

    log_event(
        logging.getLogger("bridge"),
        "request.unexpected_error",
        level=logging.ERROR,
        path=request.path,
        error=type(exc).__name__,
    )
    if is_admin_path(request.path):
        return app_error_page(500)
    return problem_response(
        Problem(
            500,
            "internal-error",
            msg("Ein interner Fehler ist aufgetreten.", "An internal error occurred."),
            msg(
                "Bitte später erneut versuchen; nichts wurde gespeichert.",
                "Please try again later; nothing was stored.",
            ),
        )
    )

"""The baseline of the intake benchmark: a bare Flask app that only reads the body and says 202.

It has the bridge's webhook route and answers like it (202, a small JSON document), but does
nothing in between: no authentication, parsing, validation, encryption, database or Redis.
Run under the same gunicorn settings as the bridge, its throughput is the ceiling that
gunicorn, Flask and the load generator leave on this machine; `bench.intake` divides the
bridge's figures by it.

    gunicorn 'bench.bare_app:create_app()'
"""

from __future__ import annotations

import json

from flask import Flask, Response, request


def create_app() -> Flask:
    """The bare app: one POST route, `/webhooks/formcycle/<service_id>`."""
    app = Flask(__name__)

    @app.post("/webhooks/formcycle/<service_id>")
    def receive(service_id: str) -> Response:
        body = request.get_data()
        answer = {"service": service_id, "received_bytes": len(body), "status": "received"}
        return Response(json.dumps(answer), status=202, mimetype="application/json")

    return app

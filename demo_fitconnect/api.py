"""The stand-in's HTTP side: token endpoint, Submission API v2, Routing API, test controls.

Written from docs.fitko.de and the OpenAPI files of the Submission and Routing APIs (see
/work/shared/reference/egov-protocols.md section 1). Errors are RFC 7807 problems; their types
use FIT-Connect's prefix. `destination-not-found`, `destination-state-invalid` and
`submission-not-found` are names seen in use; the other suffixes are the stand-in's own.
"""

from __future__ import annotations

import base64
import hmac
import re
import time
import uuid
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from demo_fitconnect import destination as subscriber
from demo_fitconnect.crypto import (
    KeyPair,
    is_compact_jwe,
    jwks,
    make_set,
    protected_header,
    sign_jwt,
)
from demo_fitconnect.state import PROBLEMS, Outage, State, Submission, problem

PROBLEM_PREFIX = "https://schema.fitko.de/fit-connect/submission-api/problems/"
MAX_BODY = 20 * 1024 * 1024
LEIKA = re.compile(r"^99\d{12}$")
LEIKA_URN = re.compile(r"^urn:de:fim:leika:leistung:99\d{12}$")
ARS = re.compile(r"^(\d{2}|\d{3}|\d{5}|\d{9}|\d{12})$")
AGS = re.compile(r"^(\d{2}|\d{3}|\d{5}|\d{8})$")
AREA_ID = re.compile(r"^\d{1,20}$")
REGION_URN = "urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs:"


def _state() -> State:
    return current_app.config["STATE"]  # type: ignore[no-any-return]  # Flask's config is untyped


def problem_response(status: int, kind: str, title: str, detail: str) -> Response:
    """An RFC 7807 answer with a FIT-Connect problem type."""
    response = jsonify(
        {"type": PROBLEM_PREFIX + kind, "title": title, "status": status, "detail": detail}
    )
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def oauth_error(status: int, error: str, description: str) -> Response:
    """An RFC 6749 error answer of the token endpoint."""
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _is_uuid(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _outage(outage: Outage) -> Response | None:
    """The fault answer when an outage is on, else None."""
    with _state().lock:
        failing = outage.take()
        status = outage.status
    if not failing:
        return None
    response = problem_response(
        status,
        "service-unavailable",
        "Service Unavailable",
        "Der Dienst ist vorübergehend gestört.",
    )
    response.headers["Retry-After"] = "1"
    return response


# --- Token endpoint (OAuth2 client credentials, client_secret_post) ----------------------------
token_bp = Blueprint("token", __name__)


@token_bp.post("/token")
def token() -> Response:
    """Issue an access token for client_id/client_secret sent in the form body."""
    state = _state()
    down = _outage(state.token_outage)
    if down is not None:
        return oauth_error(down.status_code, "temporarily_unavailable", "Token-Dienst gestört.")
    if request.authorization is not None:
        return oauth_error(
            400, "invalid_client", "Client-Authentisierung nur im Formular (client_secret_post)."
        )
    form = request.form
    if form.get("grant_type") != "client_credentials":
        return oauth_error(400, "unsupported_grant_type", "Nur client_credentials.")
    client_id = form.get("client_id", "")
    secret = form.get("client_secret", "")
    known = state.clients.get(client_id)
    # Compare even for an unknown client, so timing does not tell which ids exist.
    ok = hmac.compare_digest(secret.encode(), (known or "\x00unknown").encode())
    if known is None or not ok:
        return oauth_error(401, "invalid_client", "Client unbekannt oder Secret falsch.")
    asked = form.get("scope")
    if asked and asked != state.scope:
        return oauth_error(400, "invalid_scope", f"Erlaubter Scope: {state.scope}")
    value, issued = state.issue_token(client_id, state.scope)
    response = jsonify(
        {
            "access_token": value,
            "token_type": "Bearer",
            "expires_in": int(state.token_lifetime_s),
            "scope": issued.scope,
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Submission API v2 --------------------------------------------------------------------------
submission_bp = Blueprint("submission", __name__)
# The destination endpoints: under the Submission API's base, and (as FIT-Connect v2 splits
# them) under a destination API base of their own.
destination_bp = Blueprint("destination", __name__)


def _unauthorized(detail: str, error: str | None = None) -> Response:
    response = problem_response(401, "unauthorized", "Unauthorized", detail)
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    response.headers["WWW-Authenticate"] = challenge
    return response


def guard() -> Response | None:
    """Record the call, apply the outage fault, require a valid bearer token."""
    state = _state()
    with state.lock:
        state.requests.append((request.method, request.path))
    down = _outage(state.api_outage)
    if down is not None:
        return down
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return _unauthorized("Bearer-Token fehlt.")
    with state.lock:
        issued = state.tokens.get(value.strip())
    if issued is None:
        return _unauthorized("Token unbekannt.", "invalid_token")
    if issued.expires_at <= time.time():
        return _unauthorized("Token abgelaufen.", "invalid_token")
    request.environ["fitconnect.client_id"] = issued.client_id
    return None


submission_bp.before_request(guard)
destination_bp.before_request(guard)


def _client() -> str:
    return str(request.environ["fitconnect.client_id"])


def _json_body() -> dict[str, Any] | Response:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return problem_response(400, "request-body-invalid", "Bad Request", "JSON-Objekt erwartet.")
    return body


def _own_submission(submission_id: str) -> Submission | Response:
    with _state().lock:
        sub = _state().submissions.get(submission_id)
    if sub is None or sub.client_id != _client():
        return problem_response(
            404, "submission-not-found", "Not Found", "Einreichung nicht gefunden."
        )
    return sub


@destination_bp.get("/destinations/<destination_id>")
def get_destination(destination_id: str) -> Response:
    """The destination's public parameters."""
    with _state().lock:
        dest = _state().destinations.get(destination_id)
        document = None if dest is None else dest.document()
    if document is None:
        return problem_response(
            404, "destination-not-found", "Not Found", "Zustellpunkt unbekannt."
        )
    return jsonify(document)


@destination_bp.get("/destinations/<destination_id>/keys")
def list_keys(destination_id: str) -> Response:
    """Every public key of the destination as a JWK set (encryption and signing)."""
    with _state().lock:
        dest = _state().destinations.get(destination_id)
        keys = None if dest is None else list(dest.published.values())
    if keys is None:
        return problem_response(
            404, "destination-not-found", "Not Found", "Zustellpunkt unbekannt."
        )
    return jsonify({"keys": keys})


@destination_bp.get("/destinations/<destination_id>/keys/<kid>")
def get_key(destination_id: str, kid: str) -> Response:
    """A public key of the destination: the encryption key, or the signing key of its SETs."""
    with _state().lock:
        dest = _state().destinations.get(destination_id)
        key = None if dest is None else dest.published.get(kid)
    if dest is None:
        return problem_response(
            404, "destination-not-found", "Not Found", "Zustellpunkt unbekannt."
        )
    if key is None:
        return problem_response(404, "key-not-found", "Not Found", "Schlüssel unbekannt.")
    return jsonify(key)


@submission_bp.post("/submissions")
def create_submission() -> Response:
    """Announce a submission: destination, attachment ids, public service, region."""
    body = _json_body()
    if isinstance(body, Response):
        return body
    destination_id = body.get("destinationId")
    announced = body.get("announcedAttachments", [])
    service = body.get("publicService")
    region = body.get("region")
    invalid = None
    if not _is_uuid(destination_id):
        invalid = "destinationId muss eine UUID sein."
    elif not isinstance(announced, list) or not all(_is_uuid(a) for a in announced):
        invalid = "announcedAttachments muss eine Liste von UUIDs sein."
    elif len(set(announced)) != len(announced):
        invalid = "announcedAttachments enthält doppelte IDs."
    elif not (
        isinstance(service, dict)
        and isinstance(service.get("name"), str)
        and isinstance(service.get("identifier"), str)
        and LEIKA_URN.match(service["identifier"])
    ):
        invalid = (
            "publicService braucht name und identifier (urn:de:fim:leika:leistung:<14 Ziffern>)."
        )
    elif region is not None and not isinstance(region, str):
        invalid = "region muss ein Text sein."
    if invalid is not None:
        return problem_response(400, "request-body-invalid", "Bad Request", invalid)
    assert isinstance(service, dict)
    assert isinstance(destination_id, str)
    state = _state()
    with state.lock:
        dest = state.destinations.get(destination_id)
        if dest is None:
            return problem_response(
                404, "destination-not-found", "Not Found", "Zustellpunkt unbekannt."
            )
        if dest.status != "active":
            return problem_response(
                422,
                "destination-state-invalid",
                "Unprocessable Entity",
                f"Zustellpunkt ist nicht aktiv ({dest.status}).",
            )
        sub = Submission(
            submission_id=str(uuid.uuid4()),
            case_id=str(uuid.uuid4()),
            destination_id=destination_id,
            client_id=_client(),
            announced=list(announced),
            public_service=dict(service),
            region=region,
        )
        state.submissions[sub.submission_id] = sub
        state.cases[sub.case_id] = []
    response = jsonify(
        {"destinationId": destination_id, "submissionId": sub.submission_id, "caseId": sub.case_id}
    )
    response.status_code = 201
    return response


def _not_incomplete(sub: Submission) -> Response | None:
    if sub.status != "incomplete":
        return problem_response(
            409,
            "submission-state-invalid",
            "Conflict",
            f"Einreichung ist bereits {sub.status}.",
        )
    return None


@submission_bp.put("/submissions/<submission_id>/attachments/<attachment_id>")
def upload_attachment(submission_id: str, attachment_id: str) -> Response:
    """Store one announced attachment (a compact JWE, application/jose)."""
    sub = _own_submission(submission_id)
    if isinstance(sub, Response):
        return sub
    if request.mimetype != "application/jose":
        return problem_response(
            415, "unsupported-media-type", "Unsupported Media Type", "application/jose erwartet."
        )
    text = request.get_data(as_text=True).strip()
    if not is_compact_jwe(text):
        return problem_response(400, "request-body-invalid", "Bad Request", "Kein kompaktes JWE.")
    with _state().lock:
        wrong = _not_incomplete(sub)
        if wrong is not None:
            return wrong
        if attachment_id not in sub.announced:
            return problem_response(
                404, "attachment-not-found", "Not Found", "Anlage wurde nicht angekündigt."
            )
        sub.attachments[attachment_id] = text
    return Response(status=204)


@submission_bp.put("/submissions/<submission_id>")
def submit(submission_id: str) -> Response:
    """Submit metadata and data (both JWE); the destination then decides."""
    sub = _own_submission(submission_id)
    if isinstance(sub, Response):
        return sub
    body = _json_body()
    if isinstance(body, Response):
        return body
    metadata = body.get("encryptedMetadata")
    data = body.get("encryptedData")
    for name, value in (("encryptedMetadata", metadata), ("encryptedData", data)):
        if not isinstance(value, str) or not is_compact_jwe(value):
            return problem_response(
                400, "request-body-invalid", "Bad Request", f"{name} muss ein kompaktes JWE sein."
            )
        header = protected_header(value) or {}
        if header.get("cty") != "application/json":
            return problem_response(
                422,
                "encryption-header-invalid",
                "Unprocessable Entity",
                f"{name}: der JWE-Header braucht cty application/json.",
            )
    assert isinstance(metadata, str)
    assert isinstance(data, str)
    state = _state()
    with state.lock:
        wrong = _not_incomplete(sub)
        if wrong is not None:
            return wrong
        missing = sorted(set(sub.announced) - set(sub.attachments))
        if missing:
            return problem_response(
                422,
                "missing-attachments",
                "Unprocessable Entity",
                f"Angekündigte Anlagen fehlen: {', '.join(missing)}",
            )
        sub.encrypted_metadata = metadata
        sub.encrypted_data = data
        sub.status = "submitted"
        issuer = current_app.config["ISSUER"]
        service_key: KeyPair = current_app.config["SERVICE_KEY"]
    state.append_event(
        sub.case_id,
        make_set(service_key, issuer, "submit-submission", sub.submission_id, sub.case_id, {}),
    )
    subscriber.process(state, sub.submission_id)
    return jsonify(
        {
            "destinationId": sub.destination_id,
            "submissionId": sub.submission_id,
            "caseId": sub.case_id,
        }
    )


@submission_bp.get("/submissions/<submission_id>")
def get_submission(submission_id: str) -> Response:
    """The submission as its sender sees it (ids and which attachments arrived)."""
    sub = _own_submission(submission_id)
    if isinstance(sub, Response):
        return sub
    with _state().lock:
        return jsonify(
            {
                "destinationId": sub.destination_id,
                "submissionId": sub.submission_id,
                "caseId": sub.case_id,
                "announcedAttachments": list(sub.announced),
                "attachments": sorted(sub.attachments),
            }
        )


@submission_bp.get("/cases/<case_id>/events")
def events(case_id: str) -> Response:
    """The case's event log: the SETs visible now."""
    state = _state()
    with state.lock:
        known = case_id in state.cases
        owner = next(
            (s.client_id for s in state.submissions.values() if s.case_id == case_id), None
        )
    if not known or owner != _client():
        return problem_response(404, "case-not-found", "Not Found", "Vorgang nicht gefunden.")
    return jsonify({"eventLog": state.visible_events(case_id)})


@submission_bp.get("/submissions/<submission_id>/events")
def submission_events(submission_id: str) -> Response:
    """The same log reached by the submission (as v2 clients ask for it)."""
    sub = _own_submission(submission_id)
    if isinstance(sub, Response):
        return sub
    return jsonify({"eventLog": _state().visible_events(sub.case_id)})


# --- The service's SET signing key --------------------------------------------------------------
wellknown_bp = Blueprint("wellknown", __name__)


@wellknown_bp.get("/.well-known/jwks.json")
def service_jwks() -> Response:
    """The public key the service's own SETs (submit-submission) verify against."""
    return jsonify(jwks(current_app.config["SERVICE_KEY"]))


# --- Routing API v1 -----------------------------------------------------------------------------
routing_bp = Blueprint("routing", __name__)


def _routing_problem(detail: str) -> Response:
    return problem_response(400, "request-parameter-invalid", "Bad Request", detail)


def _ags_of(ars: str) -> str:
    """The AGS part of an ARS (Land, RB, Kreis, Gemeinde), or its prefix when shorter."""
    return ars[:5] + ars[9:] if len(ars) == 12 else ars[:5]


def _serves(region: str, kind: str, asked: str) -> bool:
    if kind == "ags":
        return asked.startswith(_ags_of(region)) or _ags_of(region).startswith(asked)
    return asked.startswith(region)


@routing_bp.get("/routes")
def routes() -> Response:
    """Destinations for a LeiKa key in an area (exactly one of ars, ags, areaId)."""
    args = request.args
    leika = args.get("leikaKey", "")
    if not LEIKA.match(leika):
        return _routing_problem("leikaKey muss 14 Ziffern haben und mit 99 beginnen.")
    areas = [name for name in ("ars", "ags", "areaId") if name in args]
    if len(areas) != 1:
        return _routing_problem("Genau einer der Parameter ars, ags oder areaId ist nötig.")
    kind = areas[0]
    asked = args[kind]
    if not {"ars": ARS, "ags": AGS, "areaId": AREA_ID}[kind].match(asked):
        return _routing_problem(f"{kind} hat ein ungültiges Format.")
    offset = args.get("offset", default=0, type=int)
    limit = args.get("limit", default=100, type=int)
    if offset is None or limit is None or offset < 0 or not 1 <= limit <= 500:
        return _routing_problem("offset >= 0 und 1 <= limit <= 500.")
    state = _state()
    key: KeyPair = current_app.config["ROUTING_KEY"]
    with state.lock:
        found = [
            d
            for d in state.destinations.values()
            if leika in d.leika_keys
            and any(
                (kind == "areaId" and asked == region)
                or (kind != "areaId" and _serves(region, kind, asked))
                for region in d.ars
            )
        ]
        page = found[offset : offset + limit]
        host = current_app.config["SUBMISSION_HOST"]
        issuer = current_app.config["ROUTING_ISSUER"]
        answers = []
        for dest in page:
            claims = {
                "submissionHost": host,
                "iss": issuer,
                "services": [
                    {
                        "gebietIDs": [REGION_URN + a for a in dest.ars],
                        "leistungIDs": [f"urn:de:fim:leika:leistung:{k}" for k in dest.leika_keys],
                    }
                ],
                "destinationId": dest.destination_id,
                "iat": int(time.time()),
                "jti": str(uuid.uuid4()),
            }
            answers.append(
                {
                    "destinationId": dest.destination_id,
                    # typ as in the OpenAPI file's example signature
                    "destinationSignature": sign_jwt(key, claims, typ="jwt"),
                    "destinationName": dest.name,
                    "destinationShortName": dest.name[:30],
                    "origin": "PVOG",
                }
            )
    return jsonify(
        {"count": len(answers), "offset": offset, "totalCount": len(found), "routes": answers}
    )


@routing_bp.after_request
def rate_limit_headers(response: Response) -> Response:
    """The RateLimit headers every Routing API answer carries (the stand-in never limits)."""
    response.headers.update(
        {"RateLimit-Limit": "1000", "RateLimit-Remaining": "999", "RateLimit-Reset": "60"}
    )
    return response


@routing_bp.get("/info")
def info() -> Response:
    """The Routing API's version (the OpenAPI file's 2.0.0)."""
    return jsonify({"version": {"major": 2, "minor": 0, "patch": 0}})


@routing_bp.get("/.well-known/jwks.json")
def routing_jwks() -> Response:
    """The public key destinationSignature verifies against."""
    return jsonify(jwks(current_app.config["ROUTING_KEY"]))


# --- Test controls (the stand-in's own, for the chaos run and the demo) -------------------------
control_bp = Blueprint("control", __name__, url_prefix="/_control")


def _ok(**fields: Any) -> Response:
    return jsonify({"ok": True, **fields})


def _bad(detail: str) -> Response:
    response = jsonify({"ok": False, "error": detail})
    response.status_code = 400
    return response


def _outage_args() -> tuple[int | None, int] | Response:
    count = request.args.get("count", type=int)
    status = request.args.get("status", default=503, type=int)
    if status is None or not 400 <= status <= 599 or (count is not None and count < 1):
        return _bad("status must be 400-599, count >= 1")
    return count, status


@control_bp.post("/<part>-down")
def down(part: str) -> Response:
    """`token-down` or `submission-down`: that side fails (`?count=n`: the next n requests;
    `?status=`, default 503)."""
    if part not in ("token", "submission"):
        return _bad("token-down or submission-down")
    parsed = _outage_args()
    if isinstance(parsed, Response):
        return parsed
    _state().set_outage(part, Outage(True, parsed[0], parsed[1]))
    return _ok()


@control_bp.post("/reject-next")
def reject_next() -> Response:
    """The next decision (`?destination=` only there) is a reject with `?problem=` (catalogue)."""
    kind = request.args.get("problem", "technical-error")
    if kind not in PROBLEMS:
        return _bad(f"problem must be one of {sorted(PROBLEMS)}")
    target = request.args.get("destination") or None
    detail = request.args.get("detail", "Abgelehnt (Test).")
    with _state().lock:
        _state().forced_rejects.append((target, problem(kind, detail)))
    return _ok()


@control_bp.post("/rotate-key")
def rotate_key() -> Response:
    """A new encryption key for `?destination=` (`?keep_old=1` keeps decrypting with the old)."""
    target = request.args.get("destination", "")
    if target not in _state().destinations:
        return _bad("unknown destination")
    kid = _state().rotate(target, request.args.get("keep_old") == "1")
    return _ok(encryptionKid=kid)


@control_bp.post("/lag")
def lag() -> Response:
    """New events show only after `?seconds=` and/or `?polls=` (0 and 0: no lag)."""
    seconds = request.args.get("seconds", default=0.0, type=float)
    polls = request.args.get("polls", default=0, type=int)
    if seconds is None or polls is None or not 0 <= seconds <= 600 or not 0 <= polls <= 1000:
        return _bad("0 <= seconds <= 600, 0 <= polls <= 1000")
    with _state().lock:
        _state().lag_s = seconds
        _state().lag_polls = polls
    return _ok()


@control_bp.post("/reset-faults")
def reset_faults() -> Response:
    """Every fault off (outages, queued rejects, lag)."""
    _state().reset_faults()
    return _ok()


@control_bp.post("/destinations")
def add_destination() -> Response:
    """Add a destination: JSON {leika, ars, schema_uri, name?, destination_id?}."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad("JSON object expected")
    leika, ars, schema_uri = body.get("leika"), body.get("ars"), body.get("schema_uri")
    if not (isinstance(leika, str) and LEIKA.match(leika)):
        return _bad("leika: 14 digits starting with 99")
    if not (isinstance(ars, str) and ARS.match(ars)):
        return _bad("ars: 2, 3, 5, 9 or 12 digits")
    if not isinstance(schema_uri, str) or not schema_uri:
        return _bad("schema_uri required")
    wanted = body.get("destination_id")
    if wanted is not None and not _is_uuid(wanted):
        return _bad("destination_id must be a UUID")
    name = body.get("name") if isinstance(body.get("name"), str) else "Demo-Zustellpunkt"
    dest = _state().add_destination(str(name), [leika], [ars], [schema_uri], wanted)
    return _ok(destinationId=dest.destination_id)


@control_bp.get("/received/<destination_id>")
def received(destination_id: str) -> Response:
    """What the destination decrypted and decided (bytes as base64)."""
    with _state().lock:
        found = [r for r in _state().received if r.destination_id == destination_id]
    return jsonify(
        [
            {
                "submission_id": r.submission_id,
                "case_id": r.case_id,
                "decision": r.decision,
                "hashes_ok": r.hashes_ok,
                "problems": r.problems,
                "metadata": r.metadata,
                "data": None if r.data is None else base64.b64encode(r.data).decode(),
                "attachments": {k: base64.b64encode(v).decode() for k, v in r.attachments.items()},
            }
            for r in found
        ]
    )


def create_app(
    state: State,
    service_key: KeyPair,
    routing_key: KeyPair,
    submission_path: str,
    routing_path: str,
    destination_path: str = "/destination-api/v2",
) -> Flask:
    """The stand-in's WSGI app; ISSUER, SUBMISSION_HOST, ROUTING_ISSUER are set once bound."""
    app = Flask("demo_fitconnect")
    app.config.update(
        STATE=state,
        SERVICE_KEY=service_key,
        ROUTING_KEY=routing_key,
        MAX_CONTENT_LENGTH=MAX_BODY,
        ISSUER="",
        SUBMISSION_HOST="",
        ROUTING_ISSUER="",
    )
    app.register_blueprint(token_bp)
    app.register_blueprint(submission_bp, url_prefix=submission_path)
    app.register_blueprint(destination_bp, url_prefix=submission_path)
    app.register_blueprint(destination_bp, url_prefix=destination_path, name="destination_api")
    # The service's JWKS at the host's root, at the Submission API's base and at the base
    # without its version (where v2 clients look: <submission base>/.well-known/jwks.json).
    app.register_blueprint(wellknown_bp)
    for prefix in {submission_path, submission_path.rpartition("/")[0]} - {""}:
        app.register_blueprint(wellknown_bp, url_prefix=prefix, name=f"wellknown{prefix}")
    app.register_blueprint(routing_bp, url_prefix=routing_path)
    app.register_blueprint(control_bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        """Routing and size errors as problem JSON, never HTML."""
        code = exc.code or 500
        return problem_response(code, "http-error", exc.name, exc.description or exc.name)

    return app

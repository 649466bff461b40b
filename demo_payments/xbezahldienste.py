"""The simulator's XBezahldienste REST side (v1.0.0), its OAuth2 token endpoint and pay page.

Create `POST /xbezahldienste/paymenttransaction/<originatorId>/<endPointId>` (a repeated
requestId gets `409 PAYMENT_EXISTS` as the standard says; `on_repeat = "return"` answers the
existing transaction instead), status `GET .../<transactionId>`, health `GET /xbezahldienste/status/<o>/<e>`,
token `POST /oauth2/token`, pay page `/xbezahldienste/pay/<transactionId>`.

The field rules of the standard are checked here on their own (not with the bridge's
sanitisers), so a sanitiser bug shows up as a VALIDATION_ERROR in the tests.

Notification (an extension, the standard defines none): when the create body carries
`notifyUrl`, every final status (paid, cancelled, expired) is POSTed there as the
PaymentTransaction JSON.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import re
import secrets
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, request

from demo_payments.config import SimulatorConfig
from demo_payments.ledger import Ledger, Txn
from demo_payments.notify import send_notification
from demo_payments.pages import XBEZAHLDIENSTE_METHODS, message_page, pay_page

# The standard's patterns (JSON Schema regexes: \w and \s are ASCII there).
PATH_ID = re.compile(r"^[\w\d-]{1,36}\Z", re.ASCII)
REQUEST_ID = re.compile(r"^[\w\d-]+\Z", re.ASCII)
PURPOSE = re.compile(r"^[\w\d\s-]+\Z", re.ASCII)
DESCRIPTION = re.compile(r"^[\w\d\s\-,\.\u00C0-\u017F]+\Z", re.ASCII)
CURRENCY = re.compile(r"^[A-Z]{3}\Z")
METHODS = frozenset(m for m, _ in XBEZAHLDIENSTE_METHODS) | {"OTHER"}

bp = Blueprint("xbezahldienste", __name__)


def ledger() -> Ledger:
    """The running simulator's ledger."""
    led: Ledger = current_app.config["LEDGER"]
    return led


def config() -> SimulatorConfig:
    """The running simulator's configuration."""
    cfg: SimulatorConfig = current_app.config["SIMULATOR"]
    return cfg


def base_url() -> str:
    """Where the simulator is reached (the configured public URL, else the request's)."""
    return (config().public_url or request.host_url).rstrip("/")


def dumps(value: Any) -> str:
    """JSON with Decimals as numbers."""
    return json.dumps(
        value,
        ensure_ascii=False,
        default=lambda o: float(o) if isinstance(o, Decimal) else str(o),
    )


def json_response(value: Any, status: int = 200) -> Response:
    """A JSON answer."""
    return Response(dumps(value), status=status, mimetype="application/json")


def problem(status: int, title: str, code: str, detail: str | None = None) -> Response:
    """An XBezahldienste problem answer (RFC 7807 with a `functionalCode`)."""
    body: dict[str, Any] = {"type": "about:blank", "status": status, "title": title}
    if detail:
        body["detail"] = detail
    body["functionalCode"] = code
    return Response(dumps(body), status=status, mimetype="application/problem+json")


def timestamp(moment: dt.datetime) -> str:
    """yyyy-MM-ddTHH:mm:ss.SSSZ."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# -- authentication ----------------------------------------------------------------------------


def _basic_ok(header: str, cfg: SimulatorConfig) -> bool:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, password = decoded.partition(":")
    # Both compared in constant time, and both always compared.
    ok_user = hmac.compare_digest(user.encode(), cfg.basic_user.encode())
    ok_password = hmac.compare_digest(password.encode(), cfg.basic_password.encode())
    return ok_user and ok_password


def authenticate() -> Response | None:
    """None when the request carries credentials the configured auth accepts, else a 401."""
    cfg = config()
    if cfg.auth == "none":
        return None
    header = request.headers.get("Authorization", "")
    scheme = header[:7].lower()
    if scheme.startswith("basic ") and cfg.auth in ("basic", "any") and _basic_ok(header, cfg):
        return None
    if (
        scheme == "bearer "
        and cfg.auth in ("oauth2", "any")
        and ledger().token_valid(header[7:].strip())
    ):
        return None
    ledger().count("unauthorized")
    response = problem(401, "Unauthorized", "FORBIDDEN", "Anmeldung fehlt oder ist ungültig.")
    response.headers["WWW-Authenticate"] = (
        'Bearer realm="xbezahldienste"' if cfg.auth == "oauth2" else 'Basic realm="xbezahldienste"'
    )
    return response


@bp.post("/oauth2/token")
def token() -> Response:
    """OAuth2 client credentials (RFC 6749 4.4): client by HTTP Basic or form fields."""
    cfg = config()
    form = request.form
    client_id = form.get("client_id", "")
    client_secret = form.get("client_secret", "")
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        client_id, _, client_secret = decoded.partition(":")
    if form.get("grant_type") != "client_credentials":
        return json_response({"error": "unsupported_grant_type"}, 400)
    ok_id = hmac.compare_digest(client_id.encode(), cfg.client_id.encode())
    ok_secret = hmac.compare_digest(client_secret.encode(), cfg.client_secret.encode())
    if not (ok_id and ok_secret):
        return json_response({"error": "invalid_client"}, 401)
    access = ledger().issue_token(client_id, cfg.token_expires_in)
    response = json_response(
        {"access_token": access, "token_type": "Bearer", "expires_in": cfg.token_expires_in}
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# -- create, status, health --------------------------------------------------------------------


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    return Decimal(value)


def _check_text(
    body: dict[str, Any],
    name: str,
    pattern: re.Pattern[str] | None,
    limit: int,
    problems: list[str],
    required: bool = True,
) -> None:
    """A string field: present when required, non-empty, within its length and pattern."""
    value = body.get(name)
    if value is None:
        if required:
            problems.append(f"{name}: required")
        return
    if not isinstance(value, str) or not value:
        problems.append(f"{name}: must be a non-empty string")
    elif len(value) > limit:
        problems.append(f"{name}: at most {limit} characters")
    elif pattern is not None and not pattern.match(value):
        problems.append(f"{name}: does not match {pattern.pattern}")


def _check_amount(value: Any, problems: list[str]) -> Decimal | None:
    """The gross amount: a number above 0 and up to 999999, in cents."""
    amount = _number(value)
    if amount is None:
        problems.append("grosAmount: must be a number")
    elif not (Decimal(0) < amount <= Decimal(999999)) or amount != amount.quantize(Decimal("0.01")):
        problems.append("grosAmount: must be > 0, <= 999999, with at most 2 decimals")
    return amount


def _items_total(items: list[Any], problems: list[str]) -> Decimal:
    """The sum of the items' net and tax amounts; a malformed item is a problem."""
    total = Decimal(0)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"items.{i}: must be an object")
            continue
        net = _number(item.get("totalNetAmount"))
        tax = _number(item.get("totalTaxAmount", 0))
        if net is None or tax is None:
            problems.append(f"items.{i}: totalNetAmount and totalTaxAmount must be numbers")
            continue
        total += net + tax
    return total


def validate_request(body: Any) -> tuple[list[str], str]:
    """The standard's field rules: (problems as "field: message", functional code)."""
    if not isinstance(body, dict):
        return ["body: must be a JSON object"], "VALIDATION_ERROR"
    problems: list[str] = []
    _check_text(body, "requestId", REQUEST_ID, 36, problems)
    _check_text(body, "requestTimestamp", None, 64, problems)
    stamp = body.get("requestTimestamp")
    if isinstance(stamp, str):
        try:
            dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except ValueError:
            problems.append("requestTimestamp: not an ISO 8601 timestamp")
    _check_text(body, "currency", CURRENCY, 3, problems)
    _check_text(body, "purpose", PURPOSE, 27, problems)
    _check_text(body, "description", DESCRIPTION, 250, problems, required=False)
    _check_text(body, "redirectUrl", None, 2082, problems)
    for name in ("redirectUrl", "notifyUrl"):
        url = body.get(name)
        if isinstance(url, str) and not re.match(r"^https?://[^\s]+\Z", url):
            problems.append(f"{name}: must be an http(s) URL")
    _check_text(body, "notifyUrl", None, 2082, problems, required=False)
    amount = _check_amount(body.get("grosAmount"), problems)
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 99:
        problems.append("items: 1 to 99 items required")
        return problems, "VALIDATION_ERROR"
    total = _items_total(items, problems)
    if problems:
        return problems, "VALIDATION_ERROR"
    if amount is not None and total != amount:
        return ["grosAmount: differs from the sum of the items"], "CALCULATION_ERROR"
    return [], ""


def transaction_json(txn: Txn) -> dict[str, Any]:
    """The PaymentTransaction of `txn` as the API answers it."""
    originator, end_point = txn.scope
    base = base_url()
    info: dict[str, Any] = {
        "transactionUrl": f"{base}/xbezahldienste/paymenttransaction/{originator}/{end_point}/{txn.txid}",
        "transactionId": txn.txid,
        "status": txn.status,
    }
    if txn.status == "INITIAL":
        info["transactionRedirectUrl"] = f"{base}/xbezahldienste/pay/{txn.txid}"
    if txn.reference:
        info["transactionReference"] = txn.reference
    if txn.status in ("PAYED", "BOOKED"):
        info["transactionTimestamp"] = timestamp(txn.changed_at)
        info["paymentMethod"] = txn.method
    if txn.status == "FAILED":
        info["statusDetail"] = "TIMEOUT"
    return {"paymentRequest": txn.request, "paymentInformation": info}


@bp.post("/xbezahldienste/paymenttransaction/<originator>/<end_point>")
def create(originator: str, end_point: str) -> Response:
    """Create a transaction; a repeated requestId gets PAYMENT_EXISTS (or the existing one)."""
    refused = authenticate()
    if refused is not None:
        return refused
    led = ledger()
    led.count("creates")
    if not (PATH_ID.match(originator) and PATH_ID.match(end_point)):
        return problem(404, "Not Found", "NO_VALID_ORIGINATOR_OR_ENDPOINT")
    try:
        body = json.loads(request.get_data(), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return problem(400, "Bad Request", "VALIDATION_ERROR", "body: not JSON")
    problems, code = validate_request(body)
    if problems:
        led.count("refused")
        return problem(400, "Bad Request", code, "; ".join(problems))
    scope = (originator, end_point)
    key = Ledger.key("xbezahldienste", scope, body["requestId"])

    def make() -> Txn:
        return Txn(
            kind="xbezahldienste",
            txid="XB" + secrets.token_hex(10).upper(),
            request_id=body["requestId"],
            scope=scope,
            amount=Decimal(body["grosAmount"]).quantize(Decimal("0.01")),
            currency=body["currency"],
            purpose=body["purpose"],
            description=body.get("description") or "",
            redirect_url=body["redirectUrl"],
            notify_url=body.get("notifyUrl"),
            request=body,
        )

    txn, created = led.create(key, make)
    if not created and config().on_repeat == "payment_exists":
        led.count("payment_exists")
        return problem(409, "Conflict", "PAYMENT_EXISTS")
    lost = led.take_lost_answer() if created else None
    if lost is not None:
        # Stored, but the answer never reaches the caller (a proxy's 502, a reset).
        return problem(lost, "Bad Gateway", "UNSPECIFIED")
    return json_response(transaction_json(txn), 201 if created else 200)


@bp.get("/xbezahldienste/paymenttransaction/<originator>/<end_point>/<txid>")
def status(originator: str, end_point: str, txid: str) -> Response:
    """The transaction's current PaymentTransaction; 404 for one this scope does not know."""
    refused = authenticate()
    if refused is not None:
        return refused
    led = ledger()
    led.count("status_calls")
    txn = led.find(txid, "xbezahldienste")
    if txn is None or txn.scope != (originator, end_point):
        return problem(404, "Not Found", "UNSPECIFIED", "Transaktion unbekannt.")
    return json_response(transaction_json(txn))


@bp.get("/xbezahldienste/status/<originator>/<end_point>")
def health(originator: str, end_point: str) -> Response:
    """The health check of the standard."""
    refused = authenticate()
    if refused is not None:
        return refused
    ledger().count("health_calls")
    return json_response({"status": "UP"})


# -- the pay page ------------------------------------------------------------------------------


def finish(txn: Txn, status_: str, method: str | None = None) -> bool:
    """Move `txn` to a final status and notify (if it was INITIAL); whether it changed."""
    if not ledger().finish(txn, status_, method):
        return False
    if txn.kind == "xbezahldienste":
        send_notification(ledger(), config(), txn, json_body=transaction_json(txn))
    return True


@bp.route("/xbezahldienste/pay/<txid>", methods=["GET", "POST"])
def pay(txid: str) -> Response:
    """GET shows the pay page; POST pays or cancels and sends the browser to redirectUrl."""
    txn = ledger().find(txid, "xbezahldienste")
    if txn is None:
        page = message_page("Zahlung unbekannt", "Diese Zahlung gibt es beim Bezahldienst nicht.")
        return Response(page, status=404, mimetype="text/html")
    if request.method == "GET" or txn.status != "INITIAL":
        action = f"{base_url()}/xbezahldienste/pay/{txn.txid}"
        page = pay_page(txn, action, XBEZAHLDIENSTE_METHODS)
        return Response(page, status=200, mimetype="text/html")
    if request.form.get("action") == "pay":
        method = request.form.get("method", "GIROPAY")
        finish(txn, "PAYED", method if method in METHODS else "OTHER")
    else:
        finish(txn, "CANCELED")
    response = Response(status=303)
    response.headers["Location"] = txn.redirect_url
    return response

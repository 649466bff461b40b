"""Test controls over HTTP under `/_control/`: outages, lost notifications, expiry, paying.

These are the simulator's own, never part of a provider's API. Every answer is JSON.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Blueprint, Response, request

from demo_payments import pmpayment, xbezahldienste
from demo_payments.ledger import Txn
from demo_payments.xbezahldienste import json_response, ledger

bp = Blueprint("control", __name__, url_prefix="/_control")


def _txn(txid: str) -> Txn | None:
    return ledger().find(txid)


def _finish(txn: Txn, status: str, method: str | None = None) -> bool:
    if txn.kind == "pmpayment":
        return pmpayment.finish(txn, status, method)
    return xbezahldienste.finish(txn, status, method)


def _unknown() -> Response:
    return json_response({"error": "unknown transaction"}, 404)


@bp.post("/down")
def down() -> Response:
    """Answer 503 to every provider request (`?count=n`: the next n only; `?status=429`)."""
    count = request.args.get("count", type=int)
    status = request.args.get("status", default=503, type=int)
    if status is None or not 400 <= status <= 599:
        return json_response({"error": "status must be 400-599"}, 400)
    ledger().set_down(count, status)
    return json_response({"down": True, "count": count, "status": status})


@bp.post("/up")
def up() -> Response:
    """Answer normally again (also ends a slow-down)."""
    led = ledger()
    led.set_up()
    led.delay_s = 0.0
    return json_response({"down": False})


@bp.post("/slow")
def slow() -> Response:
    """Let every provider answer wait `?seconds=` (at most 30), for timeout tests."""
    seconds = request.args.get("seconds", default=0.0, type=float) or 0.0
    ledger().delay_s = max(0.0, min(seconds, 30.0))
    return json_response({"delay_s": ledger().delay_s})


@bp.post("/lose-create-answers")
def lose_create_answers() -> Response:
    """Store the next `?count=` new transactions (default 1) but answer `?status=` (502)."""
    count = request.args.get("count", default=1, type=int) or 0
    status = request.args.get("status", default=502, type=int)
    if status is None or not 500 <= status <= 599:
        return json_response({"error": "status must be 500-599"}, 400)
    ledger().set_lose_answers(count, status)
    return json_response({"lose_create_answers": count, "status": status})


@bp.post("/drop-notifications")
def drop_notifications() -> Response:
    """Lose every notification from now on (they are recorded as dropped)."""
    ledger().drop_notifications = True
    return json_response({"drop_notifications": True})


@bp.post("/send-notifications")
def send_notifications() -> Response:
    """Send notifications again."""
    ledger().drop_notifications = False
    return json_response({"drop_notifications": False})


@bp.post("/pay/<txid>")
def pay(txid: str) -> Response:
    """Pay without a browser (`?method=`); notifies like the pay page. 409 if already final."""
    txn = _txn(txid)
    if txn is None:
        return _unknown()
    default = "giropay" if txn.kind == "pmpayment" else "GIROPAY"
    changed = _finish(txn, "PAYED", request.args.get("method", default))
    return json_response(txn.summary(), 200 if changed else 409)


@bp.post("/cancel/<txid>")
def cancel(txid: str) -> Response:
    """Cancel as the citizen would on the pay page."""
    txn = _txn(txid)
    if txn is None:
        return _unknown()
    changed = _finish(txn, "CANCELED")
    return json_response(txn.summary(), 200 if changed else 409)


@bp.post("/expire/<txid>")
def expire(txid: str) -> Response:
    """The provider's own timeout: an INITIAL transaction becomes FAILED."""
    txn = _txn(txid)
    if txn is None:
        return _unknown()
    changed = _finish(txn, "FAILED")
    return json_response(txn.summary(), 200 if changed else 409)


@bp.post("/set-amount/<txid>")
def set_amount(txid: str) -> Response:
    """Make the provider report another amount (`?amount=12.34`) and, with `?currency=`,
    another currency, for mismatch tests."""
    txn = _txn(txid)
    if txn is None:
        return _unknown()
    try:
        amount = Decimal(request.args.get("amount", ""))
    except InvalidOperation:
        return json_response({"error": "amount must be a number"}, 400)
    currency = request.args.get("currency", txn.currency)[:3]
    with ledger().lock:
        txn.amount = amount
        txn.currency = currency
        if txn.request:
            txn.request["grosAmount"] = amount
            txn.request["currency"] = currency
    return json_response(txn.summary())


@bp.post("/revoke-tokens")
def revoke_tokens() -> Response:
    """Revoke every OAuth2 token, as a provider restart would."""
    return json_response({"revoked": ledger().revoke_tokens()})


@bp.post("/reset")
def reset() -> Response:
    """Forget everything."""
    ledger().reset()
    return json_response({"reset": True})


@bp.get("/transactions")
def transactions() -> Response:
    """Every transaction and the call counters (creates include repeats)."""
    led = ledger()
    with led.lock:
        items = [t.summary() for t in led.all()]
        counters = dict(led.counters)
    return json_response({"count": len(items), "counters": counters, "transactions": items})


@bp.get("/tokens")
def tokens() -> Response:
    """How many OAuth2 tokens were issued (per client) and how many are held."""
    led = ledger()
    with led.lock:
        by_client = dict(led.tokens_issued)
        held = len(led.tokens)
    return json_response({"issued": sum(by_client.values()), "by_client": by_client, "held": held})


@bp.get("/notifications")
def notifications() -> Response:
    """Every notification sent or dropped, in order."""
    led = ledger()
    with led.lock:
        items = [n.summary() for n in led.notifications]
    return json_response({"count": len(items), "notifications": items})

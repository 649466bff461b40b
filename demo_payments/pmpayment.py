"""The simulator's legacy pmPayment "paypage" side (hash-signed form POST, notify, signed return).

- `POST /payment/secure` (form): ags, amount (cents), procedure, desc, notifyURL, redirectURL,
  optional accountingRecord and txid, and `hash` = lowercase hex HMAC-SHA256(salt,
  "ags|amount|procedure|desc|accountingRecord|txid|notifyURL|redirectURL"), the two optional
  fields in the string only when sent. Answers `{url, txid}`; a repeated txid answers the same.
- `/payment/pay/<ags>/<txid>`: the pay page. Paying POSTs the notify form (ags, txid, amount,
  desc, status=1, payment_method, procedure, created_at; no hash, as pmPayment does) and
  redirects the browser to redirectURL with ags, txid, amount, desc, status, payment_method,
  created_at and `hash` = HMAC(salt, "ags|txid|amount|desc|status|payment_method|created_at").
  Cancelling redirects with status=0 and an empty payment_method (no notify).
- `GET /payment/status/<ags>/<txid>`: `{status: 1|0|-1, timestamp}`.

Timestamps are local time (Europe/Berlin) as "YYYY-MM-DD HH:MM:SS", as pmPayment writes them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from decimal import Decimal
from urllib.parse import urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, request

from demo_payments.ledger import Txn
from demo_payments.notify import send_notification
from demo_payments.pages import PMPAYMENT_METHODS, message_page, pay_page
from demo_payments.xbezahldienste import base_url, config, json_response, ledger

LOCAL = ZoneInfo("Europe/Berlin")
AGS = re.compile(r"^\d{8}\Z")
SEPA_TEXT = re.compile(r"^[A-Za-z0-9 '\:\?,\-\(\+\.\)/]{1,140}\Z")
TXID = re.compile(r"^[A-Za-z0-9_.-]{1,64}\Z")
METHODS = frozenset(m for m, _ in PMPAYMENT_METHODS)
STATUS_CODE = {"INITIAL": -1, "PAYED": 1, "BOOKED": 1, "FAILED": 0, "CANCELED": 0}

bp = Blueprint("pmpayment", __name__)


def sign(salt: str, text: str) -> str:
    """Lowercase hex HMAC-SHA256 of UTF-8 `text` under `salt`."""
    return hmac.new(salt.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def init_string(fields: dict[str, str]) -> str:
    """The string the init hash covers (accountingRecord and txid only when sent)."""
    parts = [fields.get("ags", ""), fields.get("amount", ""), fields.get("procedure", "")]
    parts.append(fields.get("desc", ""))
    for optional in ("accountingRecord", "txid"):
        if optional in fields:
            parts.append(fields[optional])
    parts += [fields.get("notifyURL", ""), fields.get("redirectURL", "")]
    return "|".join(parts)


def local_time(txn: Txn, changed: bool = False) -> str:
    """A transaction's creation (or last change) time as pmPayment writes it."""
    moment = txn.changed_at if changed else txn.created_at
    return moment.astimezone(LOCAL).strftime("%Y-%m-%d %H:%M:%S")


def cents(amount: Decimal) -> str:
    """Euros as a string of cents."""
    return str(int((amount * 100).to_integral_value()))


def error(status: int, message: str) -> Response:
    """pmPayment's error answer."""
    return json_response({"error": message}, status)


@bp.post("/payment/secure")
def secure() -> Response:
    """Initiate a payment; a wrong hash is refused as pmPayment does ("ungültiger Hashwert")."""
    led = ledger()
    led.count("pm_creates")
    fields = {k: v for k, v in request.form.items()}
    ags = fields.get("ags", "")
    amount = fields.get("amount", "")
    problems = []
    if not AGS.match(ags):
        problems.append("ags")
    if not amount.isdigit() or not 0 < int(amount) <= 99999999:
        problems.append("amount")
    for name in ("procedure", "desc"):
        if not fields.get(name):
            problems.append(name)
    # The desc is a SEPA remittance text: other characters break pmPayment's hash check.
    if fields.get("desc") and not SEPA_TEXT.match(fields["desc"]):
        problems.append("desc")
    if "txid" in fields and not TXID.match(fields["txid"]):
        problems.append("txid")
    for name in ("notifyURL", "redirectURL"):
        url = fields.get(name, "")
        if url and not re.match(r"^https?://\S+\Z", url):
            problems.append(name)
    if problems:
        led.count("refused")
        return error(400, "ungültige Parameter: " + ", ".join(problems))
    expected = sign(config().pmpayment_salt, init_string(fields))
    if not hmac.compare_digest(expected, fields.get("hash", "").lower()):
        led.count("refused")
        return error(400, "ungültiger Hashwert")
    txid = fields.get("txid") or "PM" + secrets.token_hex(8)
    scope = (ags, fields["procedure"])

    def make() -> Txn:
        return Txn(
            kind="pmpayment",
            txid=txid,
            request_id=txid,
            scope=scope,
            amount=Decimal(int(amount)) / 100,
            currency="EUR",
            purpose=fields["desc"],
            description="",
            redirect_url=fields.get("redirectURL", ""),
            notify_url=fields.get("notifyURL") or None,
            accounting_record=fields.get("accountingRecord"),
        )

    txn, created = led.create(led.key("pmpayment", scope, txid), make)
    return _lost(created) or json_response(
        {"url": f"{base_url()}/payment/pay/{ags}/{txn.txid}", "txid": txn.txid}
    )


def _lost(created: bool) -> Response | None:
    """The answer to a create that was stored but whose answer is to be lost, else None."""
    lost = ledger().take_lost_answer() if created else None
    return error(lost, "Antwort verloren") if lost is not None else None


def _find(ags: str, txid: str) -> Txn | None:
    for txn in ledger().all():
        if txn.kind == "pmpayment" and txn.scope[0] == ags and txn.txid == txid:
            return txn
    return None


def return_query(txn: Txn) -> dict[str, str]:
    """The signed parameters of the browser's return to redirectURL."""
    paid = txn.status in ("PAYED", "BOOKED")
    fields = {
        "ags": txn.scope[0],
        "txid": txn.txid,
        "amount": cents(txn.amount),
        "desc": txn.purpose,
        "status": "1" if paid else "0",
        "payment_method": (txn.method or "") if paid else "",
        "created_at": local_time(txn),
    }
    text = "|".join(
        fields[k]
        for k in ("ags", "txid", "amount", "desc", "status", "payment_method", "created_at")
    )
    fields["hash"] = sign(config().pmpayment_salt, text)
    return fields


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` appended to its query."""
    parts = urlsplit(url)
    query = (parts.query + "&" if parts.query else "") + urlencode(params)
    return urlunsplit(parts._replace(query=query))


def finish(txn: Txn, status: str, method: str | None = None) -> bool:
    """Pay, cancel or expire; a paid one POSTs the notify form. Whether it changed."""
    if not ledger().finish(txn, status, method):
        return False
    if status in ("PAYED", "BOOKED"):
        form = {
            "ags": txn.scope[0],
            "txid": txn.txid,
            "amount": cents(txn.amount),
            "desc": txn.purpose,
            "status": "1",
            "payment_method": txn.method or "",
            "procedure": txn.scope[1],
            "created_at": local_time(txn),
        }
        send_notification(ledger(), config(), txn, form=form)
    return True


@bp.route("/payment/pay/<ags>/<txid>", methods=["GET", "POST"])
def pay(ags: str, txid: str) -> Response:
    """The pay page; POST pays or cancels and sends the browser back, signed."""
    txn = _find(ags, txid)
    if txn is None:
        page = message_page("Zahlung unbekannt", "Diese Zahlung gibt es beim Bezahldienst nicht.")
        return Response(page, status=404, mimetype="text/html")
    if request.method == "GET" or txn.status != "INITIAL":
        page = pay_page(txn, f"{base_url()}/payment/pay/{ags}/{txid}", PMPAYMENT_METHODS)
        return Response(page, status=200, mimetype="text/html")
    if request.form.get("action") == "pay":
        method = request.form.get("method", "giropay")
        finish(txn, "PAYED", method if method in METHODS else "giropay")
    else:
        finish(txn, "CANCELED")
    if not txn.redirect_url:
        page = message_page("Zahlung abgeschlossen", "Sie können dieses Fenster schließen.")
        return Response(page, status=200, mimetype="text/html")
    response = Response(status=303)
    response.headers["Location"] = with_query(txn.redirect_url, return_query(txn))
    return response


@bp.get("/payment/status/<ags>/<txid>")
def status(ags: str, txid: str) -> Response:
    """`{status: 1 paid | 0 failed or cancelled | -1 in progress, timestamp}`."""
    ledger().count("pm_status_calls")
    txn = _find(ags, txid)
    if txn is None:
        return error(404, "Transaktion unbekannt")
    changed = txn.status != "INITIAL"
    return json_response(
        {"status": STATUS_CODE[txn.status], "timestamp": local_time(txn, changed=changed)}
    )

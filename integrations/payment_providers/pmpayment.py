"""The `pmpayment` provider: the legacy pmPayment "paypage" API (GovConnect), hash-signed.

Create is a form POST to `{base_url}/payment/secure` with ags, amount (cents), procedure, desc,
notifyURL, redirectURL, accountingRecord (when configured), txid (= our payment id, which the
provider dedupes on) and `hash` = lowercase hex HMAC-SHA256(salt, "ags|amount|procedure|desc|
accountingRecord|txid|notifyURL|redirectURL"), accountingRecord in the string only when sent.
The answer `{url, txid}` names the pay page.

What the status call `GET {base_url}/payment/status/{ags}/{txid}` confirms, and what not: it
answers `{status: 1 | 0 | -1, timestamp}`, so it confirms *whether* the transaction is paid
(1 -> PAYED), finished unpaid (0 -> FAILED: cancelled and failed are one code) or still open
(-1 -> INITIAL), and when. It does **not** confirm the amount, the payment method or a
Kassenzeichen: `ProviderStatus.amount` is None, and the amount to check against ours is the
one of the signed return (`parse_return`, HMAC-verified) or the unsigned notify (an untrusted
claim). A paid status with an old timestamp may be a replay (Koha refuses those over 4 h).

The notify form (ags, txid, amount, desc, status, payment_method, procedure, created_at) has
no signature: `parse_callback` only reads it. The return to `redirectURL` is signed with
HMAC(salt, "ags|txid|amount|desc|status|payment_method|created_at"), verified in constant
time. Timestamps are local time (Europe/Berlin) "YYYY-MM-DD HH:MM:SS".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import string
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import parse_qs, quote

from marshmallow import ValidationError, fields, validate, validates

from integrations.channels.base import EnvName
from integrations.payment_providers.base import (
    BadCallback,
    CallbackClaim,
    PaymentOrder,
    PaymentProvider,
    ProviderConfigError,
    ProviderRefused,
    ProviderState,
    ProviderStatus,
    Transaction,
    providers,
)
from integrations.payment_providers.common import (
    ProviderOptions,
    ascii_field,
    json_body,
    pay_url_or_none,
    sanitize_request_id,
    secret,
    send,
    transaction_id_or_none,
)
from schemas.options import LOCAL_TZ

AGS = r"^\d{8}\Z"
#: Placeholders an `accounting_record` template may use.
ACCOUNTING_FIELDS = frozenset({"reference", "payment_id", "ags"})
#: SEPA's character set (the desc is the Verwendungszweck on bank statements; other
#: characters break the hash at pmPayment, as the Koha integration notes).
SEPA = r"A-Za-z0-9 '\:\?,\-\(\+\.\)/"
STATUS_CODES: dict[str, ProviderState] = {"1": "PAYED", "0": "FAILED", "-1": "INITIAL"}
RETURN_FIELDS = ("ags", "txid", "amount", "desc", "status", "payment_method", "created_at")
MAX_BODY = 64 * 1024


class PmPaymentOptions(ProviderOptions):
    """Options of `payment_providers.<id>` with `plugin = "pmpayment"`."""

    base_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    #: The authority's AGS at pmPayment; when not set, the citizen's town's.
    ags = fields.String(load_default=None, validate=validate.Regexp(AGS, error="8 digits"))
    procedure = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_.-]{1,64}\Z", error="1-64 of A-Z a-z 0-9 _ . -"),
    )
    salt_env = EnvName(required=True)
    #: Booking line for the cash office, e.g. "Verwaltungsgebuehr {reference}".
    accounting_record = fields.String(load_default=None, validate=validate.Length(max=255))
    timeout_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.1, max=120))

    @validates("accounting_record")
    def _template(self, value: str | None, **kwargs: Any) -> None:
        """Only known placeholders ({reference}, {payment_id}, {ags})."""
        if value is None:
            return
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError:
            raise ValidationError("not a valid template (unbalanced braces)") from None
        unknown = names - ACCOUNTING_FIELDS
        if unknown:
            raise ValidationError(
                f"unknown placeholder(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(ACCOUNTING_FIELDS))}"
            )


def sign(salt: str, text: str) -> str:
    """Lowercase hex HMAC-SHA256 of UTF-8 `text` keyed with `salt`."""
    return hmac.new(salt.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def init_hash_string(form: Mapping[str, str]) -> str:
    """The string the init hash covers; accountingRecord and txid only when sent."""
    parts = [form["ags"], form["amount"], form["procedure"], form["desc"]]
    parts += [form[name] for name in ("accountingRecord", "txid") if name in form]
    parts += [form.get("notifyURL", ""), form.get("redirectURL", "")]
    return "|".join(parts)


def return_hash_string(query: Mapping[str, str]) -> str:
    """The string the return signature covers."""
    return "|".join(query.get(name, "") for name in RETURN_FIELDS)


def sanitize_desc(text: str, fallback: str) -> str:
    """The desc (Verwendungszweck): SEPA characters only, umlauts spelled out, <= 27."""
    return ascii_field(text, SEPA, 27) or ascii_field(fallback, SEPA, 27) or "Gebuehr"


def cents(amount: Decimal) -> str:
    """Euros as whole cents, e.g. Decimal("35.00") -> "3500"."""
    return str(int((amount * 100).to_integral_value()))


def euros(value: Any) -> Decimal | None:
    """pmPayment's cents (a string of digits) as euros, or None."""
    if not isinstance(value, str) or not value.isdigit() or len(value) > 12:
        return None
    return Decimal(int(value)) / 100


def local_time(value: Any) -> dt.datetime | None:
    """pmPayment's "YYYY-MM-DD HH:MM:SS" (local time) as aware UTC, or None."""
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return moment.replace(tzinfo=LOCAL_TZ).astimezone(dt.UTC)


def _plain(value: Any) -> str | None:
    """An id from a callback: 1-64 of [A-Za-z0-9_.-], else None (never echo odd input)."""
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        return None
    return value


@providers.register("pmpayment")
class PmPaymentProvider(PaymentProvider):
    """A provider speaking the legacy pmPayment paypage API (see the module docstring)."""

    options_schema: ClassVar[type[PmPaymentOptions]] = PmPaymentOptions
    finds_by_payment_id: ClassVar[bool] = True  # our payment id is the txid

    def _salt(self) -> str:
        salt = secret(self.provider_id, self.options, self.secrets, "salt_env")
        assert salt is not None  # salt_env is required by the schema
        return salt

    def ags(self, municipality_ags: str | None) -> str:
        """The AGS: the configured one, else the citizen's town's."""
        configured = self.options.get("ags")
        if configured:
            return str(configured)
        if municipality_ags and re.fullmatch(AGS, municipality_ags):
            return municipality_ags
        raise ProviderConfigError(
            f"Konfigurationsfehler beim {self.what}: weder ags noch ein AGS der Gemeinde bekannt."
        )

    def create_form(self, order: PaymentOrder) -> dict[str, str]:
        """The init form for `order`, `hash` included (field order as pmPayment documents)."""
        ags = self.ags(order.municipality_ags)
        form = {
            "ags": ags,
            "amount": cents(order.amount),
            "procedure": str(self.options["procedure"]),
            "desc": sanitize_desc(order.purpose, order.reference),
        }
        template = self.options.get("accounting_record")
        if template:
            record = str(template).format(
                reference=order.reference, payment_id=order.payment_id, ags=ags
            )
            form["accountingRecord"] = ascii_field(record, SEPA, 255)
        form["txid"] = sanitize_request_id(order.payment_id)
        form["notifyURL"] = order.notify_url
        form["redirectURL"] = order.return_url
        form["hash"] = sign(self._salt(), init_hash_string(form))
        return form

    def create(self, order: PaymentOrder) -> Transaction:
        """POST the init form; our payment id as txid makes a repeat return the same one."""
        response = send(
            self.http,
            "POST",
            f"{self.base_url}/payment/secure",
            what=self.what,
            timeout=self.timeout,
            data=self.create_form(order),
            headers={"Accept": "application/json"},
        )
        body = json_body(response, self.what)
        url = pay_url_or_none(body.get("url"))
        txid = transaction_id_or_none(body.get("txid"))
        if url is None or txid is None:
            raise ProviderRefused(f"{self.what}: Antwort ohne url oder txid")
        return Transaction(transaction_id=txid, pay_url=url, transaction_reference=None)

    def status(
        self, payment_id: str, transaction_id: str | None, *, municipality_ags: str | None = None
    ) -> ProviderStatus:
        """Whether the transaction is paid (see the module docstring for what this confirms).

        Works by our own id too: we send it as txid, so the provider knows it under that.
        """
        txid = transaction_id or sanitize_request_id(payment_id)
        url = (
            f"{self.base_url}/payment/status/{quote(self.ags(municipality_ags), safe='')}"
            f"/{quote(txid, safe='')}"
        )
        response = send(
            self.http,
            "GET",
            url,
            what=self.what,
            timeout=self.timeout,
            not_found_is_unknown=True,
            headers={"Accept": "application/json"},
        )
        body = json_body(response, self.what)
        code = body.get("status")
        state = STATUS_CODES.get(str(code)) if isinstance(code, int | str) else None
        if state is None or isinstance(code, bool):
            raise ProviderRefused(f"{self.what}: unbekannter Status")
        return ProviderStatus(
            transaction_id=txid,
            status=state,
            amount=None,  # the status call does not confirm an amount
            at=local_time(body.get("timestamp")),
        )

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> CallbackClaim:
        """The notify form (unsigned): which payment, the claimed status and amount."""
        if len(body) > MAX_BODY:
            raise BadCallback("body too large")
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=32)
        except (UnicodeDecodeError, ValueError):
            raise BadCallback("body is not a form") from None
        form = {k: v[0] for k, v in parsed.items() if v}
        txid = _plain(form.get("txid"))
        payment_id = _plain(query.get("payment")) or txid
        if txid is None:
            raise BadCallback("notify without txid")
        if payment_id != txid and query.get("payment") is not None:
            raise BadCallback("payment and txid differ")
        self._check_origin(form)
        claimed = form.get("status")
        return CallbackClaim(
            payment_id=payment_id,
            transaction_id=txid,
            status=claimed[:8] if claimed is not None else None,
            amount=euros(form.get("amount")),
        )

    def parse_return(self, query: Mapping[str, str]) -> CallbackClaim:
        """The signed return: verified in constant time, else BadCallback."""
        given = query.get("hash")
        if not isinstance(given, str) or not given:
            raise BadCallback("return without hash")
        expected = sign(self._salt(), return_hash_string(query))
        if not hmac.compare_digest(expected.encode("ascii"), given.lower().encode("utf-8")):
            raise BadCallback("return signature does not verify")
        txid = _plain(query.get("txid"))
        if txid is None:
            raise BadCallback("return without txid")
        ours = query.get("payment")
        if ours is not None and ours != txid:
            raise BadCallback("payment and txid differ")
        self._check_origin(query)
        return CallbackClaim(
            payment_id=txid,
            transaction_id=txid,
            status=query.get("status"),
            amount=euros(query.get("amount")),
        )

    def _check_origin(self, fields_: Mapping[str, str]) -> None:
        """A call for another authority or procedure is not ours."""
        configured = self.options.get("ags")
        if configured and fields_.get("ags") not in (None, configured):
            raise BadCallback("ags is not ours")
        procedure = fields_.get("procedure")
        if procedure is not None and procedure != self.options["procedure"]:
            raise BadCallback("procedure is not ours")

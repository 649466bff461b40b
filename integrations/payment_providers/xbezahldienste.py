"""The `xbezahldienste` provider: the FITKO XBezahldienste REST API v1.0.0 (epay21, pmPayment, ePayBL).

Create is `POST {base_url}/paymenttransaction/{originatorId}/{endPointId}`, status is
`GET .../{transactionId}`. The standard defines no push and no signed return, so callbacks and
returns only say which payment to ask about; `status()` is the only truth.

Authentication by option `auth`: `basic` (epay21), `oauth2` client credentials (pmPayment /
GovConnect; tokens shared per process until shortly before expiry, renewed once on a 401) and
`client_certificate` (ePayBL, mutual TLS).

Extension: with `send_notify_url = true` the create body also carries `notifyUrl` (our
webhook, `?payment=<id>`) for providers that push a notification there (the simulator does).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, cast
from urllib.parse import parse_qs, quote

import requests
from marshmallow import ValidationError, fields, validate, validates_schema
from requests.adapters import HTTPAdapter

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
    UnknownTransaction,
    providers,
)
from integrations.payment_providers.common import (
    ProviderOptions,
    decimal_or_none,
    json_body,
    pay_url_or_none,
    sanitize_description,
    sanitize_purpose,
    sanitize_request_id,
    secret,
    send,
    text_or_none,
    transaction_id_or_none,
)
from integrations.payment_providers.oauth2 import TokenKey, fetch_token, tokens

#: originatorId / endPointId in a URL path: the standard's `[\w\d-]`, at most 36.
PATH_ID = r"^[A-Za-z0-9_-]{1,36}\Z"
#: Status words we accept from the provider; anything else is not a status we understand.
STATES: frozenset[str] = frozenset({"INITIAL", "PAYED", "BOOKED", "FAILED", "CANCELED"})
#: Which options each auth method uses (the others must be left out, to catch mix-ups).
AUTH_OPTIONS = {
    "basic": {"username", "password_env"},
    "oauth2": {"token_url", "client_id", "client_secret_env", "scope", "client_auth"},
    "client_certificate": {"cert_file", "key_file", "key_password_env", "ca_file"},
}
AUTH_REQUIRED = {
    "basic": {"username", "password_env"},
    "oauth2": {"token_url", "client_id", "client_secret_env"},
    "client_certificate": {"cert_file", "key_file"},
}
MAX_BODY = 1024 * 1024  # a callback body larger than this is not read


class XBezahldiensteOptions(ProviderOptions):
    """Options of `payment_providers.<id>` with `plugin = "xbezahldienste"`."""

    base_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    originator_id = fields.String(
        required=True, validate=validate.Regexp(PATH_ID, error="1-36 of A-Z a-z 0-9 _ -")
    )
    #: The authority's endpoint at the provider; when not set, the citizen's town's AGS.
    end_point_id = fields.String(
        load_default=None, validate=validate.Regexp(PATH_ID, error="1-36 of A-Z a-z 0-9 _ -")
    )
    auth = fields.String(required=True, validate=validate.OneOf(sorted(AUTH_OPTIONS)))
    username = fields.String(validate=validate.Length(min=1, max=256))
    password_env = EnvName()
    token_url = fields.Url(schemes={"http", "https"}, require_tld=False)
    client_id = fields.String(validate=validate.Length(min=1, max=256))
    client_secret_env = EnvName()
    scope = fields.String(validate=validate.Length(min=1, max=512))
    client_auth = fields.String(validate=validate.OneOf(["basic", "post"]))
    cert_file = fields.String(validate=validate.Length(min=1, max=4096))
    key_file = fields.String(validate=validate.Length(min=1, max=4096))
    key_password_env = EnvName()
    ca_file = fields.String(validate=validate.Length(min=1, max=4096))
    timeout_s = fields.Float(load_default=10.0, validate=validate.Range(min=0.1, max=120))
    send_notify_url = fields.Boolean(load_default=False)
    #: Booking data for the cash office, sent with the item (e.g. {"Haushaltsstelle": "..."}).
    booking_data = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=64)),
        values=fields.String(validate=validate.Length(max=256)),
        load_default=dict,
    )

    @validates_schema
    def _auth_options(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Each auth method needs its own options and no other method's."""
        auth = data.get("auth")
        if auth not in AUTH_OPTIONS:
            return
        problems: dict[str, list[str]] = {}
        for name in sorted(AUTH_REQUIRED[auth] - data.keys()):
            problems[name] = [f"required with auth = {auth!r}"]
        foreign = set().union(*AUTH_OPTIONS.values()) - AUTH_OPTIONS[auth]
        for name in sorted(foreign & data.keys()):
            problems[name] = [f"not used with auth = {auth!r}"]
        if problems:
            raise ValidationError(problems)


class _KeyPasswordAdapter(HTTPAdapter):
    """An adapter that unlocks an encrypted client key (requests' `cert=` has no password)."""

    def __init__(self, key_password: str) -> None:
        """Keep the password for the connection pools."""
        self._key_password = key_password
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """urllib3 takes the key's password as a pool option."""
        kwargs["key_password"] = self._key_password
        super().init_poolmanager(*args, **kwargs)


def money(amount: Decimal) -> Decimal:
    """Euros with two decimals."""
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def timestamp(moment: dt.datetime) -> str:
    """`yyyy-MM-ddTHH:mm:ss.SSSZ` in UTC, as the standard's examples write it."""
    utc = moment.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_timestamp(value: Any) -> dt.datetime | None:
    """A provider timestamp as aware UTC, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


@providers.register("xbezahldienste")
class XBezahldiensteProvider(PaymentProvider):
    """A provider speaking XBezahldienste REST (see the module docstring)."""

    options_schema: ClassVar[type[XBezahldiensteOptions]] = XBezahldiensteOptions

    def __init__(
        self,
        provider_id: str,
        options: Mapping[str, Any],
        secrets: Mapping[str, str],
        session: requests.Session | None = None,
    ) -> None:
        """Bind to validated options (secrets are looked up when a call needs them)."""
        super().__init__(provider_id, options, secrets, session)
        self._key_adapter_mounted = False

    # -- addressing ---------------------------------------------------------------------------

    def end_point(self, municipality_ags: str | None) -> str:
        """The endPointId: the configured one, else the citizen's town's AGS."""
        configured = self.options.get("end_point_id")
        if configured:
            return str(configured)
        if municipality_ags and re.fullmatch(PATH_ID, municipality_ags):
            return municipality_ags
        raise ProviderConfigError(
            f"Konfigurationsfehler beim {self.what}: weder end_point_id noch ein AGS bekannt."
        )

    def collection_url(self, municipality_ags: str | None) -> str:
        """`{base_url}/paymenttransaction/{originatorId}/{endPointId}`."""
        return (
            f"{self.base_url}/paymenttransaction/{quote(str(self.options['originator_id']))}"
            f"/{quote(self.end_point(municipality_ags))}"
        )

    # -- auth ---------------------------------------------------------------------------------

    def _token_key(self) -> TokenKey:
        scope = self.options.get("scope")
        return TokenKey(str(self.options["token_url"]), str(self.options["client_id"]), scope)

    def _token(self) -> str:
        key = self._token_key()
        client_secret = secret(self.provider_id, self.options, self.secrets, "client_secret_env")
        assert client_secret is not None  # the schema requires client_secret_env with oauth2

        def fetch() -> tuple[str, float | None]:
            return fetch_token(
                self.http,
                key,
                client_secret,
                client_auth=str(self.options.get("client_auth", "basic")),
                timeout=self.timeout,
                what=self.what,
            )

        return tokens.get(key, fetch)

    def _auth_kwargs(self) -> dict[str, Any]:
        """requests keyword arguments for the configured auth (except OAuth2's header)."""
        auth = self.options["auth"]
        if auth == "basic":
            password = secret(self.provider_id, self.options, self.secrets, "password_env")
            return {"auth": (str(self.options["username"]), password or "")}
        if auth == "client_certificate":
            if self.options.get("key_password_env") and not self._key_adapter_mounted:
                password = secret(self.provider_id, self.options, self.secrets, "key_password_env")
                if password is not None:
                    self.http.mount(self.base_url + "/", _KeyPasswordAdapter(password))
                self._key_adapter_mounted = True
            ca_file = self.options.get("ca_file")
            return {
                "cert": (str(self.options["cert_file"]), str(self.options["key_file"])),
                "verify": str(ca_file) if ca_file else True,
            }
        return {}

    def request(
        self, method: str, url: str, *, not_found_is_unknown: bool = False, **kwargs: Any
    ) -> requests.Response:
        """One authenticated API call; with OAuth2 a 401 renews the token once and retries."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        kwargs.update(self._auth_kwargs())
        if self.options["auth"] != "oauth2":
            return send(
                self.http,
                method,
                url,
                what=self.what,
                timeout=self.timeout,
                not_found_is_unknown=not_found_is_unknown,
                headers=headers,
                **kwargs,
            )
        for attempt in (1, 2):
            token = self._token()
            try:
                return send(
                    self.http,
                    method,
                    url,
                    what=self.what,
                    timeout=self.timeout,
                    not_found_is_unknown=not_found_is_unknown,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                    **kwargs,
                )
            except ProviderRefused as exc:
                if exc.status_code != 401 or attempt == 2:
                    raise
                # The token was revoked or expired early (provider restart): renew once.
                tokens.invalidate(self._token_key(), token)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the contract -------------------------------------------------------------------------

    def create_body(self, order: PaymentOrder, now: dt.datetime | None = None) -> bytes:
        """The PaymentRequest JSON for `order` (fields sanitised to the standard's rules)."""
        purpose = sanitize_purpose(order.purpose, fallback=sanitize_purpose(order.reference))
        description = sanitize_description(order.description, fallback=purpose)
        amount = float(money(order.amount))  # exact: <= 999999.99 with two decimals
        body: dict[str, Any] = {
            "requestId": sanitize_request_id(order.payment_id),
            "requestTimestamp": timestamp(now or dt.datetime.now(dt.UTC)),
            "currency": order.currency.upper()[:3],
            "grosAmount": amount,
            "purpose": purpose,
            "description": description,
            "redirectUrl": order.return_url,
            "items": [
                {
                    "id": "1",
                    "reference": sanitize_purpose(order.reference, fallback="1"),
                    "description": purpose,
                    "taxRate": 0,
                    "quantity": 1,
                    "totalNetAmount": amount,
                    "totalTaxAmount": 0,
                    "singleNetAmount": amount,
                    "singleTaxAmount": 0,
                    "bookingData": dict(self.options.get("booking_data") or {}),
                }
            ],
        }
        if self.options.get("send_notify_url"):
            body["notifyUrl"] = order.notify_url
        # Fees are public charges without VAT: the one item carries the whole amount.
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def create(self, order: PaymentOrder) -> Transaction:
        """POST the PaymentRequest; the same requestId twice never makes two transactions.

        A repeated requestId is answered PAYMENT_EXISTS by the standard and raises
        ProviderRefused(code="PAYMENT_EXISTS"); v1.0.0 has no lookup by requestId, so the
        payment flow then starts a new attempt (worker/payment_flow.py).
        """
        response = self.request(
            "POST",
            self.collection_url(order.municipality_ags),
            data=self.create_body(order),
            headers={"Content-Type": "application/json"},
        )
        info = self._information(json_body(response, self.what))
        transaction_id = transaction_id_or_none(info.get("transactionId"))
        if transaction_id is None:
            raise ProviderRefused(f"{self.what}: Antwort ohne gültige transactionId")
        return Transaction(
            transaction_id=transaction_id,
            pay_url=pay_url_or_none(info.get("transactionRedirectUrl")),
            transaction_reference=text_or_none(info.get("transactionReference"), 36),
            status=self._state(info.get("status"), default="INITIAL"),
        )

    def status(
        self, payment_id: str, transaction_id: str | None, *, municipality_ags: str | None = None
    ) -> ProviderStatus:
        """GET the transaction; PAYED and BOOKED both mean paid, the amount is `grosAmount`
        (as reported, not rounded) in the `currency` of the paymentRequest.

        XBezahldienste asks by the provider's transaction id only: without one this raises
        UnknownTransaction (the caller repeats the idempotent create to learn it).
        """
        if not transaction_id:
            raise UnknownTransaction(f"{self.what}: ohne transactionId keine Statusabfrage")
        url = f"{self.collection_url(municipality_ags)}/{quote(transaction_id, safe='')}"
        body = json_body(self.request("GET", url, not_found_is_unknown=True), self.what)
        info = self._information(body)
        request = body.get("paymentRequest")
        request = request if isinstance(request, dict) else {}
        # Exactly as reported, never rounded: 35.001 must not read as 35.00.
        amount = decimal_or_none(request.get("grosAmount"))
        state = self._state(info.get("status"), default=None)
        return ProviderStatus(
            transaction_id=transaction_id_or_none(info.get("transactionId")) or transaction_id,
            status=state,
            amount=amount,
            transaction_reference=text_or_none(info.get("transactionReference"), 36),
            method=text_or_none(info.get("paymentMethod"), 32),
            at=parse_timestamp(info.get("transactionTimestamp")),
            detail=text_or_none(info.get("statusDetail"), 99),
            currency=text_or_none(request.get("currency"), 8),
        )

    def health(self, municipality_ags: str | None = None) -> bool:
        """`GET {base_url}/status/{originatorId}/{endPointId}`: whether the provider answers 2xx."""
        url = (
            f"{self.base_url}/status/{quote(str(self.options['originator_id']))}"
            f"/{quote(self.end_point(municipality_ags))}"
        )
        self.request("GET", url)
        return True

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> CallbackClaim:
        """A POST naming our payment (`?payment=<id>`) and/or a transactionId (JSON or form)."""
        if len(body) > MAX_BODY:
            raise BadCallback("body too large")
        fields_: dict[str, Any] = {}
        content_type = next(
            (v for k, v in headers.items() if k.lower() == "content-type"), ""
        ).lower()
        if body.strip():
            if "json" in content_type or body.lstrip()[:1] in (b"{", b"["):
                try:
                    parsed = json.loads(body, parse_float=Decimal)
                except (ValueError, UnicodeDecodeError):
                    raise BadCallback("body is not JSON") from None
                if not isinstance(parsed, dict):
                    raise BadCallback("body is not a JSON object")
                # A flat object, or a whole PaymentTransaction (what the simulator sends).
                request = parsed.get("paymentRequest")
                info = parsed.get("paymentInformation")
                fields_ = {
                    **parsed,
                    **(request if isinstance(request, dict) else {}),
                    **(info if isinstance(info, dict) else {}),
                }
            else:
                try:
                    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError:
                    raise BadCallback("body is not UTF-8") from None
                fields_ = {k: v[0] for k, v in form.items() if v}
        payment_id = _plain(query.get("payment")) or _plain(fields_.get("requestId"))
        transaction_id = _plain(fields_.get("transactionId"))
        if payment_id is None and transaction_id is None:
            raise BadCallback("neither payment nor transactionId")
        claimed = fields_.get("status")
        return CallbackClaim(
            payment_id=payment_id,
            transaction_id=transaction_id,
            status=claimed[:16] if isinstance(claimed, str) else None,
            amount=decimal_or_none(fields_.get("grosAmount")),
        )

    def parse_return(self, query: Mapping[str, str]) -> CallbackClaim:
        """The citizen's return carries no trustworthy status: only which payment (`payment`)."""
        payment_id = _plain(query.get("payment"))
        if payment_id is None:
            raise BadCallback("return without payment")
        return CallbackClaim(payment_id=payment_id, transaction_id=None, status=None, amount=None)

    # -- reading answers ----------------------------------------------------------------------

    def _information(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        info = body.get("paymentInformation")
        if not isinstance(info, dict):
            raise ProviderRefused(f"{self.what}: Antwort ohne paymentInformation")
        return cast(Mapping[str, Any], info)

    def _state(self, value: Any, default: ProviderState | None) -> ProviderState:
        if isinstance(value, str) and value.upper() in STATES:
            return cast(ProviderState, value.upper())
        if default is not None and value is None:
            return default
        raise ProviderRefused(f"{self.what}: unbekannter Status")


def _plain(value: Any) -> str | None:
    """An id from a callback: 1-64 of [A-Za-z0-9_-], else None (never echo odd input)."""
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        return None
    return value if all(c.isascii() and (c.isalnum() or c in "_-") for c in value) else None

"""How the simulator behaves: credentials it accepts, token lifetime, notify timing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The fixed demo credentials (never real ones): epay21-style Basic auth, an OAuth2 client
#: and the pmPayment salt. Tests and the example configuration use these.
DEMO_BASIC_USER = "bridge-demo"
DEMO_BASIC_PASSWORD = "demo-basic-passwort"  # noqa: S105 - a published demo credential
DEMO_CLIENT_ID = "bridge-demo"
DEMO_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - a published demo credential
DEMO_PMPAYMENT_SALT = "demo-pmpayment-salt"


@dataclass(frozen=True)
class SimulatorConfig:
    """The simulator's settings.

    `auth` is what the XBezahldienste API accepts: "basic", "oauth2", "any" (either, the
    default) or "none". `on_repeat` is what a create repeating a requestId gets:
    "payment_exists" (the default: `409` with the functional code `PAYMENT_EXISTS`, as the
    standard answers) or "return" (the existing transaction, a lenient provider's dedupe; kept
    for tests of the bridge against such a provider). `notify_delay_s` > 0 sends notifications from a background thread
    after that delay (reordering tests); 0 sends them before the browser is redirected.
    """

    auth: Literal["basic", "oauth2", "any", "none"] = "any"
    basic_user: str = DEMO_BASIC_USER
    basic_password: str = DEMO_BASIC_PASSWORD
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    token_expires_in: float = 300.0
    pmpayment_salt: str = DEMO_PMPAYMENT_SALT
    on_repeat: Literal["return", "payment_exists"] = "payment_exists"
    notify_delay_s: float = 0.0
    notify_timeout_s: float = 5.0
    #: The base URL pay pages are announced under (None: the URL the request came to).
    public_url: str | None = None

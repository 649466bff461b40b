"""Notifications the simulator sends to a caller's notify URL after a pay, cancel or expiry."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import requests

from demo_payments.config import SimulatorConfig
from demo_payments.ledger import Ledger, Notification, Txn, now_utc


def send_notification(
    ledger: Ledger,
    config: SimulatorConfig,
    txn: Txn,
    *,
    json_body: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
) -> None:
    """POST the notification for `txn` to its notify URL (JSON or form), or drop it when told.

    With `notify_delay_s` it goes from a background thread after the delay, so a test can see
    the citizen's return arrive before the notification.
    """
    url = txn.notify_url
    if not url:
        return
    if ledger.drop_notifications:
        ledger.record_notification(
            Notification(txn.txid, url, txn.status, True, None, None, now_utc().isoformat())
        )
        return

    def post() -> None:
        if config.notify_delay_s > 0:
            time.sleep(config.notify_delay_s)
        code: int | None = None
        error: str | None = None
        try:
            if json_body is not None:
                response = requests.post(
                    url,
                    data=json.dumps(json_body, default=str).encode("utf-8"),
                    headers={"Content-Type": "application/json"},
                    timeout=config.notify_timeout_s,
                )
            else:
                response = requests.post(url, data=form, timeout=config.notify_timeout_s)
            code = response.status_code
        except requests.RequestException as exc:
            error = type(exc).__name__
        ledger.record_notification(
            Notification(txn.txid, url, txn.status, False, code, error, now_utc().isoformat())
        )

    if config.notify_delay_s > 0:
        threading.Thread(target=post, name="demo-payments-notify", daemon=True).start()
    else:
        post()

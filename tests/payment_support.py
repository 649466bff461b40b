"""The citizen's two steps to pay: open the signed pay link (a GET that changes nothing), then
press "Jetzt bezahlen" (the POST that creates the transaction), as a browser does them.

Shared by the pay link's own tests and the end-to-end payment flows.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import requests

FORM = re.compile(r'<form method="post" action="([^"]+)">')
HIDDEN = re.compile(r'<input type="hidden" name="(token|csrf_token)" value="([^"]*)">')


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The pay form's action and hidden fields (token, csrf_token) from the pay page."""
    action = FORM.search(page)
    assert action, page
    fields = {name: html.unescape(value) for name, value in HIDDEN.findall(page)}
    assert set(fields) == {"token", "csrf_token"}, page
    return html.unescape(action.group(1)), fields


def press_pay(url: str, session: requests.Session | None = None) -> requests.Response:
    """Open the pay link and press "Jetzt bezahlen"; the POST's answer (no redirect followed).

    The session keeps the page's double-submit cookie for the POST, as a browser would.
    """
    browser = session or requests.Session()
    page = browser.get(url, timeout=10)
    if page.status_code != 200 or "Jetzt bezahlen" not in page.text:
        return page  # paid, withdrawn, unknown, a refused link: nothing to press
    action, fields = form_of(page.text)
    return browser.post(urljoin(url, action), data=fields, allow_redirects=False, timeout=10)

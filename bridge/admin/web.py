"""The German admin web page under /admin/ as one blueprint, with every page's routes on it.

Works without JavaScript (plain links and forms). The pages live by idea: `session` (login,
logout and the guard in front of every page), `overview`, `lists` (submissions, failures),
`case` (the case page and its actions), `bulk` (bulk replay), `export` (the lists as CSV),
`accounts` (accounts and API tokens, for admins), `report` (the daily report) and `activity`
(who did what); `blueprint` holds what they share. Each registers its routes on the blueprint
when imported, which is what this module is for: registering `blueprint` from here brings the
whole page.
"""

from __future__ import annotations

from bridge.admin import accounts, activity, bulk, case, export, lists, overview, report, session
from bridge.admin.blueprint import blueprint

# Imported for their routes; named here so the import is visibly on purpose.
PAGES = (session, overview, lists, case, bulk, export, accounts, report, activity)

__all__ = ["PAGES", "blueprint"]

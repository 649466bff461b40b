"""The database's clock: the one time that every host of a deployment agrees on.

Leases and due times are compared across hosts (web, workers, sweeper on different machines);
each host's own clock may be off by seconds or minutes. The database server's clock is the
same for all of them, so every state change of a delivery reads the time from there.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, func, select


def database_now(conn: Connection) -> dt.datetime:
    """The database server's current time as an aware UTC datetime.

    PostgreSQL: `now()`, the start of the current transaction, as naive UTC like the stored
    columns. SQLite runs on the one host that owns the file, so its clock is that host's; it
    gives milliseconds, which is finer than any lease or schedule needs.
    """
    if conn.dialect.name == "postgresql":
        moment = conn.execute(select(func.timezone("UTC", func.now()))).scalar_one()
        if not isinstance(moment, dt.datetime):
            raise TypeError(f"now() gave {type(moment).__name__}, not a timestamp")
        return moment.replace(tzinfo=dt.UTC)
    text = conn.execute(select(func.strftime("%Y-%m-%d %H:%M:%f", "now"))).scalar_one()
    return dt.datetime.fromisoformat(str(text)).replace(tzinfo=dt.UTC)

"""PostgreSQL's client programs (pg_dump, pg_restore, psql) run for DATABASE_URL, password unseen.

The password never stands on a command line (every local user can read those in /proc) nor in
an error message: the programs get the URL without it and read it from a pass file of mode 0600
in a private temporary folder, named by libpq's `passfile` parameter and removed afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url

# Debian's package of the client programs, named in the error when one is missing.
CLIENT_PACKAGE = "postgresql-client"


class ToolError(Exception):
    """A client program is missing or failed; the message names it and never the password."""


def program(name: str) -> str:
    """The path of client program `name` on PATH, or a ToolError saying how to install it."""
    found = shutil.which(name)
    if found is None:
        raise ToolError(
            f"{name} is not installed or not on PATH: install the PostgreSQL client programs "
            f"of the server's major version or newer (Debian: apt-get install {CLIENT_PACKAGE})"
        )
    return found


def _escape(field: str) -> str:
    # The pass file's fields are separated by ':'; '\' and ':' inside one are escaped.
    return field.replace("\\", "\\\\").replace(":", "\\:")


def shown(url: str) -> str:
    """The database URL as it may be shown: its password replaced by ***."""
    return make_url(url).render_as_string(hide_password=True)


class Libpq:
    """The libpq URI of a database (without its password) and the pass file that carries it."""

    def __init__(self, url: str, folder: Path) -> None:
        """Write the pass file (if the URL has a password) into `folder`, which must be private."""
        parsed = make_url(url)
        self.password = parsed.password
        uri = parsed.set(drivername="postgresql", password=None)
        query = dict(uri.query)
        if self.password is not None:
            passfile = folder / "pgpass"
            passfile.touch(mode=0o600)
            passfile.write_text(f"*:*:*:*:{_escape(str(self.password))}\n", encoding="utf-8")
            query["passfile"] = str(passfile)
        self.uri = uri.set(query=query).render_as_string(hide_password=False)

    def run(self, name: str, args: Sequence[str], *, what: str) -> str:
        """Run client program `name` with `args` (`{uri}` in one stands for the database); its stdout.

        A failure raises ToolError with `what` and the program's own message.
        """
        command = [program(name), *(a.replace("{uri}", self.uri) for a in args)]
        # The program is PostgreSQL's own, from PATH; the arguments are ours (no shell).
        result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            message = result.stderr.strip() or f"exit status {result.returncode}"
            if self.password:
                message = message.replace(str(self.password), "***")
            raise ToolError(f"{what} failed: {message}")
        return result.stdout


@contextmanager
def libpq(url: str) -> Iterator[Libpq]:
    """A `Libpq` for `url` whose pass file lives only as long as the block."""
    with tempfile.TemporaryDirectory(prefix="bridge-pg-") as folder:
        yield Libpq(url, Path(folder))

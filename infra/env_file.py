"""A file of secrets in `NAME=value` lines (systemd's EnvironmentFile, or `export NAME=value`
for a shell): read only when it is its owner's alone, extended without touching a value in it.

A symbolic link is refused (whoever could replace it would choose where the secrets go), so is
a file others may read or write: secrets do not go where they are already exposed. The new
content is written to a private file beside it and renamed over it, so a crash leaves the old
file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ASSIGNMENT = re.compile(r"^\s*(export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
PRIVATE = 0o600


class EnvFileError(Exception):
    """The file cannot be used for secrets (the message says why and what to do)."""


@dataclass(frozen=True)
class EnvFile:
    """The lines of an environment file as read, and whose it is."""

    path: Path
    lines: tuple[str, ...]
    exists: bool
    owner: tuple[int, int] | None = None

    def values(self) -> dict[str, str]:
        """Each name's value (the last assignment wins, as in systemd and the shell)."""
        found: dict[str, str] = {}
        for line in self.lines:
            match = ASSIGNMENT.match(line)
            if match:
                found[match.group(2)] = _unquote(match.group(3).strip())
        return found

    def uses_export(self) -> bool:
        """True when its assignments are `export NAME=value` (a file for the shell)."""
        styles = [m.group(1) is not None for m in map(ASSIGNMENT.match, self.lines) if m]
        return bool(styles) and all(styles)

    def with_values(self, new: Mapping[str, str], notes: Mapping[str, str]) -> list[str]:
        """The lines with `new` set: an empty assignment of a name is filled where it stands,
        any other name appended (after a comment line from `notes`, if given).

        A name that already has a value must not be in `new`; nothing here overwrites one.
        """
        current = self.values()
        clash = sorted(name for name in new if current.get(name))
        if clash:
            raise ValueError(f"would overwrite {', '.join(clash)}")
        lines = list(self.lines)
        pending = dict(new)
        for index in reversed(range(len(lines))):  # the last assignment is the one that counts
            match = ASSIGNMENT.match(lines[index])
            if match and match.group(2) in pending:
                lines[index] = (
                    f"{match.group(1) or ''}{match.group(2)}={pending.pop(match.group(2))}"
                )
        prefix = "export " if self.uses_export() else ""
        for name, value in pending.items():
            if name in notes:
                lines.append(f"# {notes[name]}")
            lines.append(f"{prefix}{name}={value}")
        return lines


def read_env_file(path: Path) -> EnvFile:
    """The file at `path` (empty when there is none yet), or EnvFileError when it is unsafe."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise EnvFileError(f"{path}: the directory {path.parent} does not exist") from None
        return EnvFile(path, (), exists=False)
    if stat.S_ISLNK(info.st_mode):
        raise EnvFileError(f"{path} is a symbolic link; give the file itself")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise EnvFileError(f"{path} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise EnvFileError(f"{path} is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise EnvFileError(
                f"{path} is open to others (mode {mode:04o}); secrets go only into a file its "
                f"owner alone can read: chmod 600 {path}"
            )
        text = handle.read().decode("utf-8")
    return EnvFile(path, tuple(text.splitlines()), exists=True, owner=(info.st_uid, info.st_gid))


def write_env_file(env: EnvFile, lines: Iterable[str]) -> None:
    """Replace the file with `lines` (mode 0600, its owner kept), atomically."""
    directory = env.path.parent
    temporary = directory / f".{env.path.name}.{secrets.token_hex(8)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(temporary, flags, PRIVATE)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE)
            if env.owner is not None:
                # Root filling a file that belongs to someone else leaves it theirs; a user
                # who may not give it away keeps it (it is theirs and private anyway).
                with contextlib.suppress(PermissionError):
                    os.fchown(handle.fileno(), *env.owner)
            handle.write(("\n".join(lines) + "\n").encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, env.path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value

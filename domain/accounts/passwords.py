"""Password hashing with scrypt (memory-hard, standard library) and the password policy.

A stored hash names its parameters ("scrypt$n$r$p$salt$hash"), so raising the cost later
only needs `needs_rehash` at the next login (ADR 9).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from domain.problems import msg
from schemas import Msg

MIN_LENGTH = 12
MAX_LENGTH = 1024  # scrypt reads all of it; a megabyte "password" would only burn CPU


@dataclass(frozen=True)
class ScryptParams:
    """The cost of scrypt: n (CPU/memory, a power of two), r (block size), p (parallelism)."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        """Memory scrypt needs (128 * n * r bytes) plus headroom; OpenSSL refuses more."""
        return 128 * self.n * self.r * 2 + 1024 * 1024


# OWASP's minimum for scrypt: n=2^17 (128 MiB), r=8, p=1.
DEFAULT = ScryptParams()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# Each hash holds 128 * n * r bytes (128 MiB by default) while it runs: at most SLOTS at once per
# process, so a burst of logins cannot exhaust the host's memory. Logins take a slot without
# waiting (`hashing_slot(wait=False)`) so a burst is refused at once instead of holding every
# web thread in a queue; other hashing (the command line) waits for one.
SLOTS = 2
_AT_ONCE = threading.BoundedSemaphore(SLOTS)
# What a login refused for busy slots is told to wait: hashes take well under a second.
BUSY_RETRY_S = 2
_held = threading.local()


class HashingBusy(Exception):
    """Every hashing slot of this process is in use and the caller did not want to wait."""


@contextmanager
def hashing_slot(*, wait: bool = True) -> Iterator[None]:
    """Hold one of the process's hashing slots; re-entered freely by the thread holding one.

    Raises HashingBusy at once when `wait` is false and no slot is free.
    """
    depth: int = getattr(_held, "depth", 0)
    if depth == 0 and not _AT_ONCE.acquire(blocking=wait):
        raise HashingBusy
    _held.depth = depth + 1
    try:
        yield
    finally:
        _held.depth = depth
        if depth == 0:
            _AT_ONCE.release()


def _derive(password: str, salt: bytes, params: ScryptParams) -> bytes:
    with hashing_slot():
        return _scrypt(password, salt, params)


def _scrypt(password: str, salt: bytes, params: ScryptParams) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=params.maxmem,
        dklen=32,
    )


def hash_password(password: str, params: ScryptParams = DEFAULT) -> str:
    """The storable hash of `password` with a fresh random salt."""
    if len(password) > MAX_LENGTH:
        raise ValueError("password longer than MAX_LENGTH (policy_problem says so first)")
    salt = secrets.token_bytes(16)
    digest = _derive(password, salt, params)
    return f"scrypt${params.n}${params.r}${params.p}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[ScryptParams, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        params = ScryptParams(int(parts[1]), int(parts[2]), int(parts[3]))
        return params, _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` produced `stored` (compared in constant time; malformed: False)."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    params, salt, digest = parsed
    # An over-long input is hashed only in part (for the same time) and never matches.
    same = hmac.compare_digest(_derive(password[:MAX_LENGTH], salt, params), digest)
    return same and len(password) <= MAX_LENGTH


def needs_rehash(stored: str, params: ScryptParams = DEFAULT) -> bool:
    """Whether `stored` was made with other parameters than the current ones."""
    parsed = _parse(stored)
    return parsed is None or parsed[0] != params


# Hashed once per parameter set: unknown user names cost as much as wrong passwords.
_DUMMIES: dict[ScryptParams, str] = {}


def burn_time(password: str, params: ScryptParams = DEFAULT) -> None:
    """Verify against a dummy hash so an unknown user name takes as long as a wrong password."""
    dummy = _DUMMIES.get(params)
    if dummy is None:
        dummy = _DUMMIES[params] = hash_password(secrets.token_urlsafe(16), params)
    verify_password(password, dummy)


def policy_problem(password: str, username: str) -> Msg | None:
    """Why `password` is not acceptable for `username` (German first), or None."""
    if len(password) < MIN_LENGTH:
        return msg(
            f"Das Passwort muss mindestens {MIN_LENGTH} Zeichen lang sein.",
            f"The password must be at least {MIN_LENGTH} characters long.",
        )
    if len(password) > MAX_LENGTH:
        return msg(
            f"Das Passwort darf höchstens {MAX_LENGTH} Zeichen lang sein.",
            f"The password must be at most {MAX_LENGTH} characters long.",
        )
    folded = password.casefold()
    if username and username.casefold() in folded:
        return msg(
            "Das Passwort darf den Benutzernamen nicht enthalten.",
            "The password must not contain the user name.",
        )
    if len(set(password)) < 4:
        return msg(
            "Das Passwort besteht aus zu wenigen verschiedenen Zeichen.",
            "The password uses too few different characters.",
        )
    return None

"""Console users, passwords, login throttling and CSRF tokens.

Users come from a TOML file (`[console] users_file`), one table per user:

    [users.anna]
    role = "operator"                      # or "viewer": sees everything, may do nothing
    password_hash = "$argon2id$v=19$..."   # `fixgw console add-user` writes it

Passwords are hashed with Argon2id (argon2-cffi: salted, memory-hard); nothing here is home-made crypto. The
file is read again whenever it changes, so removing a user or changing a role takes effect at that user's next
request, without a restart.
"""

from __future__ import annotations

import collections
import os
import secrets
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from config.errors import ConfigError

ROLES = ("viewer", "operator")
_hasher = PasswordHasher()
# Verified against when the user name is unknown, so that a wrong name costs the same time as a wrong password.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    password_hash: str

    @property
    def may_act(self) -> bool:
        return self.role == "operator"


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise ValueError("a console password has at least 12 characters")
    return _hasher.hash(password)


def load_users(path: Path) -> dict[str, User]:
    """The users of the file; a broken file names the file, the field and why."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(str(path), "(file)", f"cannot read: {e.strerror or e}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(str(path), "(syntax)", f"invalid TOML: {e}") from None
    users = data.get("users")
    if not isinstance(users, dict) or not users:
        raise ConfigError(str(path), "users", "no [users.NAME] table: the console would have no one to let in")
    out: dict[str, User] = {}
    for name, entry in users.items():
        if not isinstance(entry, dict):
            raise ConfigError(str(path), f"users.{name}", "must be a table with role and password_hash")
        extra = set(entry) - {"role", "password_hash"}
        if extra:
            raise ConfigError(str(path), f"users.{name}.{sorted(extra)[0]}", "unknown setting")
        role = entry.get("role")
        if role not in ROLES:
            raise ConfigError(str(path), f"users.{name}.role", f"must be one of {', '.join(ROLES)}, not {role!r}")
        h = entry.get("password_hash")
        if not isinstance(h, str) or not h.startswith("$argon2"):
            raise ConfigError(str(path), f"users.{name}.password_hash",
                              "must be an Argon2 hash (write it with `fixgw console add-user`)")
        out[name] = User(name, role, h)
    return out


class Users:
    """The users file, read again when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}
        self.get("")  # a broken file fails the start, not the first login

    def get(self, name: str) -> User | None:
        st = os.stat(self.path)
        if (st.st_mtime_ns, st.st_size) != self._stamp:
            self._users = load_users(self.path)
            self._stamp = (st.st_mtime_ns, st.st_size)
        return self._users.get(name)

    def check(self, name: str, password: str) -> User | None:
        """The user, when the password is theirs."""
        user = self.get(name)
        try:
            _hasher.verify(user.password_hash if user else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        return user


class LoginThrottle:
    """Failed logins per user name and per address within a window; over the limit, a login is refused
    without looking at the password."""

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._blocked_at: dict[str, float] = {}

    def _recent(self, key: str) -> int:
        """Failures of `key` within the window (keys with none are forgotten: random names cost no memory)."""
        q = self._failures.get(key)
        if q is None:
            return 0
        cutoff = self.clock() - self.window_s
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            del self._failures[key]
        return len(q)

    def blocked(self, *keys: str) -> bool:
        return any(self._recent(k) >= self.max_failures for k in keys)

    def failed(self, *keys: str) -> None:
        now = self.clock()
        for k in keys:
            self._failures[k].append(now)

    def succeeded(self, name_key: str) -> None:
        self._failures.pop(name_key, None)

    def first_block(self, key: str) -> bool:
        """True for the first refusal of `key` in a window (the one worth journaling)."""
        now = self.clock()
        for k, at in list(self._blocked_at.items()):
            if now - at >= self.window_s:
                del self._blocked_at[k]
        if key in self._blocked_at:
            return False
        self._blocked_at[key] = now
        return True


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: object, given: object) -> bool:
    return isinstance(expected, str) and isinstance(given, str) and bool(expected) \
        and secrets.compare_digest(expected, given)

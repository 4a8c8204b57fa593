"""The sd_notify protocol (systemd's service readiness / watchdog channel), without libsystemd.

systemd hands a Type=notify service the address of a unix datagram socket in NOTIFY_SOCKET; the service
sends newline-separated KEY=VALUE datagrams to it. See sd_notify(3) and systemd.service(5).

Written by hand rather than depending on a binding: the protocol is one sendto() per message, and the
gateway must not grow a C dependency (or a failure mode) for it. Every send is non-blocking and swallows
its error: a broken notify channel must never take the order path down with it. systemd notices a
missing READY=1 or missing keep-alives on its own and acts on that.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger("fixgw.sdnotify")

_ENV_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _address(raw: str) -> bytes | None:
    """NOTIFY_SOCKET as a sendto() address; None when it is a form this module does not speak."""
    if raw.startswith("@"):
        # Linux abstract namespace: a leading NUL instead of '@', and no trailing NUL.
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return os.fsencode(raw)
    # systemd >= 254 also offers vsock:CID:PORT (for VMs); a gateway never runs as such a guest payload.
    return None


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE assignment in the datagram: STATUS must stay one field.
    return text.replace("\r", " ").replace("\n", " ")


class Notifier:
    """Sends service state to systemd. Every method is a cheap no-op when not started by systemd.

    Methods return True when a datagram was handed to the kernel and False otherwise (no-op or failure);
    they never raise. Safe to call from any thread: each message is one datagram.
    """

    def __init__(self, address: bytes | None, watchdog_usec: int | None = None) -> None:
        self._address = address
        # The watchdog is meaningless without a channel to feed it through.
        self._watchdog_usec = watchdog_usec if (address is not None and watchdog_usec) else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._warned = False
        self.send_failures = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, unset_environment: bool = False) -> "Notifier":
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (os.environ unless `environ` is given).

        `unset_environment=True` removes the three variables from os.environ afterwards, so that child
        processes (a venue simulator, a helper) do not mistake themselves for the service's main process.
        """
        env = os.environ if environ is None else environ
        raw = env.get("NOTIFY_SOCKET", "")
        address = _address(raw) if raw else None
        if raw and address is None:
            log.warning("NOTIFY_SOCKET has an unsupported form, notifications disabled",
                        extra={"notify_socket": raw})
        watchdog_usec = _watchdog_usec(env) if address is not None else None
        if unset_environment and environ is None:
            for name in _ENV_VARS:
                os.environ.pop(name, None)
        return cls(address, watchdog_usec)

    # ------------------------------------------------------------------ introspection
    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_enabled(self) -> bool:
        return self._watchdog_usec is not None

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to send WATCHDOG=1: half the timeout, as sd_watchdog_enabled(3) advises, so one late
        keep-alive does not get the service killed. None when systemd is not watching this process."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    # ------------------------------------------------------------------ messages
    def ready(self, status: str = "") -> bool:
        return self._send("READY=1", status)

    def status(self, text: str) -> bool:
        if self._address is None:
            return False
        return self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        if self._watchdog_usec is None:
            return False
        return self._send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self._send("STOPPING=1", status)

    def reloading(self, status: str = "") -> bool:
        # Type=notify-reload (systemd >= 253) rejects RELOADING=1 without MONOTONIC_USEC: it pairs the
        # message with the reload request it answers. Older systemd and Type=notify ignore the extra field.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self._send("RELOADING=1", status, extra=f"MONOTONIC_USEC={usec}")

    def ready_after_reload(self, status: str = "") -> bool:
        return self._send("READY=1", status)

    def errno(self, n: int) -> bool:
        return self._send(f"ERRNO={int(n)}")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for more time to start, reload or stop (EXTEND_TIMEOUT_USEC), e.g. while numba compiles."""
        return self._send(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1_000_000))}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    # ------------------------------------------------------------------ transport
    def _send(self, first: str, status: str = "", extra: str = "") -> bool:
        if self._address is None:
            return False
        fields = [first]
        if extra:
            fields.append(extra)
        if status:
            fields.append(f"STATUS={_one_line(status)}")
        payload = "\n".join(fields).encode()
        try:
            sock = self._sock
            if sock is None:
                sock = self._open()
            sock.sendto(payload, self._address)
            return True
        except OSError as e:
            self._failed(e, first)
            return False

    def _open(self) -> socket.socket:
        with self._lock:
            if self._sock is None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # A full receive queue on systemd's side must cost us a dropped keep-alive, not a stalled
                # order-path thread: EAGAIN is counted like any other failure.
                s.setblocking(False)
                self._sock = s
            return self._sock

    def _failed(self, e: OSError, what: str) -> None:
        with self._lock:
            self.send_failures += 1
            first = not self._warned
            self._warned = True
        if first:
            # Once only: a dead notify socket would otherwise log on every keep-alive, forever.
            log.warning("sd_notify send failed; further failures are only counted",
                        extra={"notify_message": what, "error": str(e), "errno": e.errno})


def _watchdog_usec(env: Mapping[str, str]) -> int | None:
    raw_usec = env.get("WATCHDOG_USEC", "")
    if not raw_usec:
        return None
    try:
        usec = int(raw_usec)
    except ValueError:
        log.warning("WATCHDOG_USEC is not an integer, watchdog disabled", extra={"watchdog_usec": raw_usec})
        return None
    if usec <= 0:
        return None
    raw_pid = env.get("WATCHDOG_PID", "")
    if raw_pid:
        # systemd sets WATCHDOG_PID so that a forked child inheriting the environment does not feed the
        # parent's watchdog (and thereby hide the parent hanging).
        try:
            pid = int(raw_pid)
        except ValueError:
            return None
        if pid != os.getpid():
            return None
    return usec

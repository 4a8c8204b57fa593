"""gateway.control.sdnotify against real unix datagram sockets, playing systemd's side of NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.control.daemon import StartupKeepAlive
from gateway.control.sdnotify import Notifier

RECV_TIMEOUT_S = 5.0


class Receiver:
    """systemd's end: a bound AF_UNIX/SOCK_DGRAM socket and the NOTIFY_SOCKET value that names it."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value
        sock.settimeout(RECV_TIMEOUT_S)

    def recv(self) -> bytes:
        return self.sock.recv(4096)

    def notifier(self, **extra_env: str) -> Notifier:
        return Notifier.from_env({"NOTIFY_SOCKET": self.env_value, **extra_env})


def _short_dir(tmp_path: Path) -> Iterator[Path]:
    # sun_path holds 108 bytes; pytest's tmp_path under a long test name can exceed it.
    if len(str(tmp_path / "notify.sock")) < 100:
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(prefix="sdn") as d:
        yield Path(d)


@pytest.fixture
def sock_dir(tmp_path: Path) -> Iterator[Path]:
    yield from _short_dir(tmp_path)


@pytest.fixture
def path_receiver(sock_dir: Path) -> Iterator[Receiver]:
    path = sock_dir / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    try:
        yield Receiver(s, str(path))
    finally:
        s.close()


@pytest.fixture
def abstract_receiver() -> Iterator[Receiver]:
    name = f"fixgw-test-{os.getpid()}-{uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    try:
        yield Receiver(s, "@" + name)
    finally:
        s.close()


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest) -> Receiver:
    return request.getfixturevalue(f"{request.param}_receiver")


# ---------------------------------------------------------------------- payloads
def test_ready_with_and_without_status(receiver: Receiver) -> None:
    n = receiver.notifier()
    assert n.enabled
    assert n.ready() is True
    assert receiver.recv() == b"READY=1"
    assert n.ready("venue logged on, 2 clients") is True
    assert receiver.recv() == b"READY=1\nSTATUS=venue logged on, 2 clients"


def test_status_stopping_errno_and_extend_timeout(receiver: Receiver) -> None:
    n = receiver.notifier()
    n.status("venue reconnecting")
    assert receiver.recv() == b"STATUS=venue reconnecting"
    n.stopping()
    assert receiver.recv() == b"STOPPING=1"
    n.stopping("logging sessions out")
    assert receiver.recv() == b"STOPPING=1\nSTATUS=logging sessions out"
    n.errno(5)
    assert receiver.recv() == b"ERRNO=5"
    n.extend_timeout(1.5)
    assert receiver.recv() == b"EXTEND_TIMEOUT_USEC=1500000"
    assert n.send_failures == 0


def test_status_text_cannot_inject_fields(receiver: Receiver) -> None:
    n = receiver.notifier()
    n.status("line one\nREADY=1")
    assert receiver.recv() == b"STATUS=line one READY=1"


def test_reloading_carries_monotonic_usec(receiver: Receiver) -> None:
    n = receiver.notifier()
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    m = re.fullmatch(rb"RELOADING=1\nMONOTONIC_USEC=(\d+)", receiver.recv())
    assert m, "RELOADING=1 must be followed by MONOTONIC_USEC=<CLOCK_MONOTONIC in microseconds>"
    assert before <= int(m.group(1)) <= after
    n.ready_after_reload("limits reloaded")
    assert receiver.recv() == b"READY=1\nSTATUS=limits reloaded"


def test_watchdog_sends_keepalive_and_interval_is_half(receiver: Receiver) -> None:
    n = receiver.notifier(WATCHDOG_USEC="10000000")
    assert n.watchdog_enabled
    assert n.watchdog_interval_s == 5.0
    assert n.watchdog() is True
    assert receiver.recv() == b"WATCHDOG=1"


def test_watchdog_pid_of_this_process_enables_it(receiver: Receiver) -> None:
    n = receiver.notifier(WATCHDOG_USEC="3000000", WATCHDOG_PID=str(os.getpid()))
    assert n.watchdog_interval_s == 1.5
    n.watchdog()
    assert receiver.recv() == b"WATCHDOG=1"


def test_watchdog_pid_of_another_process_disables_it(receiver: Receiver) -> None:
    other = os.getppid() if os.getppid() != os.getpid() else os.getpid() + 1
    n = receiver.notifier(WATCHDOG_USEC="10000000", WATCHDOG_PID=str(other))
    assert not n.watchdog_enabled
    assert n.watchdog_interval_s is None
    assert n.watchdog() is False
    # Datagrams keep their order: if a keep-alive had gone out, it would arrive before this status.
    n.status("marker")
    assert receiver.recv() == b"STATUS=marker"


@pytest.mark.parametrize("usec", ["", "0", "-5", "ten"])
def test_no_or_bad_watchdog_usec_means_no_watchdog(receiver: Receiver, usec: str) -> None:
    n = receiver.notifier(WATCHDOG_USEC=usec)
    assert n.watchdog_interval_s is None
    assert n.watchdog() is False
    n.status("marker")
    assert receiver.recv() == b"STATUS=marker"


# ---------------------------------------------------------------------- not under systemd
def test_without_notify_socket_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")  # a watchdog without a channel is no watchdog
    n = Notifier.from_env()
    assert not n.enabled
    assert n.watchdog_interval_s is None
    results = [n.ready("x"), n.status("x"), n.watchdog(), n.stopping("x"), n.reloading(),
               n.ready_after_reload(), n.errno(1), n.extend_timeout(1)]
    assert results == [False] * len(results)
    assert n.send_failures == 0
    assert n._sock is None  # no file descriptor spent outside systemd


def test_unsupported_address_form_disables_notifications() -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": "relative/notify.sock", "WATCHDOG_USEC": "1000000"})
    assert not n.enabled
    assert n.watchdog_interval_s is None
    assert n.ready() is False
    assert n.send_failures == 0


def test_from_os_environ_and_unset_environment(path_receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_receiver.env_value)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    n = Notifier.from_env(unset_environment=True)
    assert "NOTIFY_SOCKET" not in os.environ
    assert "WATCHDOG_USEC" not in os.environ
    assert "WATCHDOG_PID" not in os.environ
    assert n.watchdog_interval_s == 1.0
    n.ready()
    assert path_receiver.recv() == b"READY=1"


# ---------------------------------------------------------------------- failures never raise
def test_vanished_socket_is_counted_and_logged_once(sock_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = sock_dir / "gone.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    n = Notifier.from_env({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "1000000"})
    s.close()
    path.unlink()
    with caplog.at_level(logging.DEBUG, logger="fixgw.sdnotify"):
        assert n.ready() is False
        assert n.send_failures == 1
        assert n.watchdog() is False
        assert n.status("still alive") is False
        assert n.send_failures == 3
    warnings = [r for r in caplog.records if r.name == "fixgw.sdnotify"]
    assert len(warnings) == 1, "a dead notify socket must be logged once, then only counted"


def test_closed_abstract_socket_is_counted() -> None:
    name = f"fixgw-test-{os.getpid()}-{uuid.uuid4().hex}"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + name)
    n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
    s.close()
    assert n.stopping() is False
    assert n.send_failures == 1


def test_full_receiver_does_not_block_the_sender(path_receiver: Receiver) -> None:
    # systemd not reading (stuck, or the queue full) must cost keep-alives, never a blocked caller.
    n = path_receiver.notifier(WATCHDOG_USEC="1000000")
    sent = sum(n.watchdog() for _ in range(20_000))
    assert n.send_failures > 0
    assert sent + n.send_failures == 20_000
    assert path_receiver.recv() == b"WATCHDOG=1"  # what did fit was delivered intact


def test_startup_keepalive_extends_the_start_timeout_until_the_body_is_done(receiver: Receiver) -> None:
    n = receiver.notifier()
    with StartupKeepAlive(n, every_s=0.05, extend_s=7, status="starting: replaying") as ka:
        # Two rounds arrive while the body (the state rebuild) is still running.
        rounds = [receiver.recv() for _ in range(4)]
    assert rounds == [b"EXTEND_TIMEOUT_USEC=7000000", b"STATUS=starting: replaying"] * 2
    n.ready("serving")
    # Whatever round raced the end of the body was sent before __exit__ returned, so READY comes after it.
    rest = []
    while (msg := receiver.recv()) != b"READY=1\nSTATUS=serving":
        rest.append(msg)
    assert set(rest) <= {b"EXTEND_TIMEOUT_USEC=7000000", b"STATUS=starting: replaying"}
    assert ka.sent >= 2


def test_startup_keepalive_is_silent_outside_systemd() -> None:
    with StartupKeepAlive(Notifier(None), every_s=0.01) as ka:
        pass
    assert ka.sent == 0

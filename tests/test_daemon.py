"""`fixgw run` as operators run it: a real process, systemd's notify socket, the admin socket, signals, and a
restart drill that SIGKILLs the daemon in the middle of a flow of orders and fills."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from gwtest import wait_until, write_config

ROOT = Path(__file__).resolve().parent.parent


class NotifySocket:
    """A real unix datagram socket standing in for systemd's NOTIFY_SOCKET, read continuously (as systemd does:
    the kernel queues only a few datagrams, and a full queue makes the sender's non-blocking send fail)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.seen: list[str] = []
        self._read = 0  # wait_for consumes messages in order
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        while not self._closed:
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._cond:
                self.seen.append(msg)
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """The next message (after those already consumed) that contains `text`."""
        found: list[str] = []

        def match() -> bool:
            while self._read < len(self.seen):
                msg = self.seen[self._read]
                self._read += 1
                if text in msg:
                    found.append(msg)
                    return True
            return False

        with self._cond:
            if not self._cond.wait_for(match, timeout):
                raise TimeoutError(f"no {text!r} on the notify socket; saw {self.seen[-5:]}")
        return found[0]

    def close(self) -> None:
        self._closed = True
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def short_tmp():
    # unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer
    with tempfile.TemporaryDirectory(prefix="fx") as d:
        yield Path(d)


class Daemon:
    def __init__(self, cfg, tmp: Path, notify: NotifySocket, watchdog_usec: int = 1_000_000) -> None:
        self.cfg_path = write_config(cfg, tmp / "gateway.toml")
        self.env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(watchdog_usec),
                    "PYTHONPATH": str(ROOT)}
        self.env.pop("WATCHDOG_PID", None)
        self.log = open(tmp / "daemon.log", "ab")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "run", "--config", str(self.cfg_path)],
                                     env=self.env, stdout=self.log, stderr=self.log, cwd=ROOT)

    def admin(self, *args: str) -> dict:
        r = subprocess.run([sys.executable, "-m", "gateway.cli", "admin", "--config", str(self.cfg_path), *args],
                           capture_output=True, text=True, timeout=60, cwd=ROOT, env=self.env)
        assert r.stdout, r.stderr
        return json.loads(r.stdout)

    def kill(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture
def daemon_stack(stack, short_tmp):
    notify = NotifySocket(short_tmp / "notify")
    stack.cfg = stack.cfg.model_copy(update={"gateway": stack.cfg.gateway.model_copy(
        update={"admin_socket": short_tmp / "admin.sock"})})
    stack.start_sim()
    d = Daemon(stack.cfg, stack.tmp, notify)
    try:
        yield stack, d, notify
    finally:
        d.close()
        notify.close()


def _er(client, cl: str, exec_type: str, status: str | None = None, timeout: float = 20.0) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                           and (status is None or m.get(39) == status), timeout=timeout)


def test_ready_admin_commands_reload_and_a_clean_sigterm(daemon_stack) -> None:
    stack, d, notify = daemon_stack
    d.start()
    notify.wait_for("EXTEND_TIMEOUT_USEC=")  # asked for more start-up time while rebuilding, before READY
    notify.wait_for("READY=1")
    notify.wait_for("WATCHDOG=1")
    c = stack.client()
    c.new_order("J1", "ACC1", "JPM", "1", 100, 200.0)  # rests at the venue
    _er(c, "J1", "0")
    st = d.admin("status")
    assert st["ok"] and st["sessions"]["venue"] and st["sessions"]["clients_logged_on"] == ["FIXGW->OMS1"]
    assert st["open_orders"] == 1 and st["orders"][0]["cl_ord_id"] == "J1"
    assert st["utilisation"]["ACC1"]["gross_exposure"] == pytest.approx(20_000 / 5_000_000)

    res = d.admin("kill", "on", "--scope", "account:ACC1", "--who", "alice", "--why", "runaway algo")
    assert res["ok"] and res["cancelled"] == 1
    _er(c, "J1", "4", "4")
    c.new_order("J2", "ACC1", "JPM", "1", 100, 200.0)
    assert _er(c, "J2", "8")[58].startswith("KILL_SWITCH_ACCOUNT")
    assert d.admin("status")["kill_switch"]["accounts"] == ["ACC1"]
    assert not d.admin("kill", "on", "--scope", "account:NOPE", "--who", "alice", "--why", "typo")["ok"]
    assert d.admin("kill", "off", "--scope", "account:ACC1", "--who", "alice", "--why", "fixed")["ok"]

    version = d.admin("status")["limits_version"]
    d.proc.send_signal(signal.SIGHUP)
    notify.wait_for("RELOADING=1")
    notify.wait_for("READY=1")
    assert d.admin("status")["limits_version"] == version  # same files, same version; the swap happened
    assert d.admin("reload", "--who", "bob", "--why", "new limits")["ok"]

    assert d.kill(signal.SIGTERM) == 0
    assert "STOPPING=1" in notify.wait_for("STOPPING=1")
    c.wait_for(lambda m: m.get(35) == "5", admin=True)  # the gateway logged the client out
    rows = _journal_admin(stack.cfg.state_dir / "journal.sqlite")
    assert ("kill on", "account:ACC1", "alice", "runaway algo") in rows
    assert any(r[0] == "reload" and r[2] == "SIGHUP" for r in rows)
    assert any(r[0] == "reload" and r[2] == "bob" for r in rows)


def _journal_admin(path: Path) -> list[tuple]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT action, scope, who, why FROM admin ORDER BY q").fetchall()
    finally:
        db.close()


def test_admin_socket_is_owner_only(daemon_stack) -> None:
    stack, d, notify = daemon_stack
    d.start()
    notify.wait_for("READY=1")
    mode = os.stat(stack.cfg.admin_socket).st_mode & 0o777
    assert mode == 0o600


def test_a_bad_limits_file_on_reload_keeps_the_old_limits(daemon_stack, tmp_path) -> None:
    stack, d, notify = daemon_stack
    limits = tmp_path / "limits.toml"
    limits.write_text((ROOT / "config/examples/limits.toml").read_text())
    risk = stack.cfg.risk.model_copy(update={"limits": limits})
    d.cfg_path = write_config(stack.cfg.model_copy(update={"risk": risk}), stack.tmp / "gateway.toml")
    d.start()
    notify.wait_for("READY=1")
    before = d.admin("status")["limits_version"]
    limits.write_text("[global]\nqty_max = -1\n")
    res = d.admin("reload", "--who", "bob", "--why", "typo")
    assert not res["ok"] and str(limits) in res["error"]
    assert d.admin("status")["limits_version"] == before
    c = stack.client()
    c.new_order("Q1", "ACC1", "AAPL", "1", 20_000, 190.0)
    assert _er(c, "Q1", "8")[58].startswith("QTY_MAX")  # old limits in force


def test_watchdog_stops_while_the_order_path_is_stalled(stack, short_tmp) -> None:
    """In-process daemon loop: hold the router lock as a stuck order-path thread would."""
    from gateway.control.daemon import serve
    from gateway.control.sdnotify import Notifier
    from gateway.service import Gateway

    notify = NotifySocket(short_tmp / "notify")
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"})
    stack.start_sim()
    gw = Gateway(stack.cfg)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(loop.run_until_complete(
        serve(gw, stop, notifier, admin_path=short_tmp / "a.sock"))))
    t.start()
    try:
        notify.wait_for("READY=1")
        notify.wait_for("WATCHDOG=1")
        with gw.router.lock:  # the order path is now stuck
            notify.wait_for("STATUS=unhealthy")
            seen = len(notify.seen)
            with pytest.raises(TimeoutError):
                notify.wait_for("WATCHDOG=1", timeout=1.5)  # several intervals without a keep-alive
            assert not any("WATCHDOG=1" in m for m in notify.seen[seen:])
        notify.wait_for("WATCHDOG=1")  # released: keep-alives resume
    finally:
        loop.call_soon_threadsafe(stop.set)
        t.join(timeout=60)
        notify.close()
    assert result == [0]


def _state_rebuilt(d: Daemon) -> list[dict]:
    """The daemon's "state rebuilt" log lines so far, one per start."""
    text = (Path(d.log.name)).read_text(errors="replace")
    return [json.loads(ln) for ln in text.splitlines() if '"msg": "state rebuilt from the event log"' in ln]


@pytest.mark.parametrize("checkpoint_every", [100_000, 40], ids=["no-checkpoint-yet", "checkpoints"])
def test_restart_drill_sigkill_mid_flow_loses_and_double_counts_nothing(daemon_stack, checkpoint_every) -> None:
    stack, d, notify = daemon_stack
    stack.cfg = stack.cfg.model_copy(update={"gateway": stack.cfg.gateway.model_copy(
        update={"checkpoint_every_events": checkpoint_every})})
    d.cfg_path = write_config(stack.cfg, stack.tmp / "gateway.toml")
    d.start()
    notify.wait_for("READY=1")
    c = stack.client()
    sent: list[str] = []
    stop_sending = threading.Event()

    def flow() -> None:  # AAPL fills at once, JPM rests; paced by sleeps, bounded
        for n in range(120):
            if stop_sending.is_set():
                return
            cl = f"O{n}"
            if n % 3 == 2:
                c.new_order(cl, "ACC1", "JPM", "1", 10, 200.0)
            else:
                c.new_order(cl, "ACC1", "AAPL", "1" if n % 2 else "2", 10, 190.0)
            sent.append(cl)
            time.sleep(0.01)

    sender = threading.Thread(target=flow)
    sender.start()
    c.wait_for(lambda m: m.get(11) == "O30")  # well into the flow
    if checkpoint_every < 100_000:  # killed after the daemon's first checkpoint: the restart starts from it
        wait_until(lambda: b'"msg": "checkpoint written"' in Path(d.log.name).read_bytes(), 60, "a checkpoint")
    assert d.kill(signal.SIGKILL) == -signal.SIGKILL
    # The venue keeps working while the gateway is dead: resting orders fill, reports queue up for it.
    for o in list(stack.sim.orders.values()):
        if o.symbol == "JPM" and o.leaves > 0:
            stack.sim.fill_open(o.cl_ord_id, 4)
    d.start()
    notify.wait_for("READY=1")
    sender.join(timeout=60)
    assert c.wait_logon(30)
    # Every order the client sent gets answered; the flow resumed on the same session, no reset.
    for cl in sent:
        try:
            c.wait_for(lambda m, cl=cl: m.get(11) == cl and m.get(35) == "8", timeout=30)
        except TimeoutError:
            events = [ln for ln in (stack.cfg.state_dir / "events.log").read_text().splitlines()
                      if f'"cl":"{cl}"' in ln]
            venue = [o for o in stack.sim.orders.values() if any(f'"v":"{o.cl_ord_id}"' in e for e in events)]
            raise AssertionError(f"{cl} never answered; gateway events {events}; venue {venue}") from None
    assert not any(m.get(35) == "4" and m.get(123) != "Y" for m in c.admin_received)  # no SequenceReset-Reset
    assert not any(m.get(35) == "3" for m in c.admin_received)  # no session-level rejects

    # The reports the venue queued while the gateway was down reach the client (forwarded with the venue's
    # ExecIDs); status flushes the journal, so it then holds every fill the gateway applied.
    venue_exec_ids = {f["exec_id"] for f in stack.sim.fills}
    for exec_id in venue_exec_ids:
        c.wait_for(lambda m, x=exec_id: m.get(17) == x, timeout=30)
    st = d.admin("status")
    fills = _journal_fills(stack.cfg.state_dir / "journal.sqlite")
    counts = Counter(f[0] for f in fills)
    assert counts and max(counts.values()) == 1, "a fill was counted twice"
    assert set(counts) == venue_exec_ids, "a fill was lost"
    truth: dict[str, float] = {}
    for f in stack.sim.fills:
        truth[f["symbol"]] = truth.get(f["symbol"], 0.0) + (f["qty"] if f["side"] == "1" else -f["qty"])
    assert st["positions"]["ACC1"] == pytest.approx({k: v for k, v in truth.items() if v})
    venue_open = sorted(o.cl_ord_id for o in stack.sim.orders.values() if o.leaves > 0)
    assert st["open_orders"] == len(venue_open)
    client_seq = c.session().getExpectedTargetNum()
    assert client_seq > len(sent)  # the client's inbound sequence carried on across the restart
    starts = _state_rebuilt(d)
    if checkpoint_every < 100_000:  # the daemon made checkpoints during the flow; the restart began at one
        assert starts[-1]["from_checkpoint"] and starts[-1]["from_checkpoint"] > 0
        # A clean stop writes one of the whole log: the next start replays nothing, and builds the same book.
        assert d.kill(signal.SIGTERM) == 0
        last_seq = st["event_seq"]
        d.start()
        notify.wait_for("READY=1")
        again = _state_rebuilt(d)[-1]
        assert again["from_checkpoint"] == last_seq and again["events"] == 0
        st2 = d.admin("status")
        assert st2["positions"] == st["positions"] and st2["open_orders"] == st["open_orders"]
    else:
        assert starts[-1]["from_checkpoint"] is None
    # What the drill proved, for whoever runs it with -s (the closing note and docs/operations.md quote it).
    print(f"\nrestart drill: {len(sent)} orders sent, SIGKILL after O30, {len(venue_exec_ids)} venue fills, "
          f"{len(fills)} journaled (each once), positions {st['positions']['ACC1']} = venue's, "
          f"open orders {st['open_orders']} = venue's {len(venue_open)}, client session seq in {client_seq}, "
          f"no sequence reset, no session reject")


def _journal_fills(path: Path) -> list[tuple]:
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT exec_id, last_qty FROM fills WHERE exec_type = 'F'").fetchall()
    finally:
        db.close()

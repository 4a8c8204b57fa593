"""`fixgw run`: the gateway in the foreground, with its control plane on an asyncio loop (uvloop).

QuickFIX's threads carry the order path. The loop supervises everything else: housekeeping, the systemd
watchdog, the admin socket, the end-of-day report; a task that dies is restarted with backoff and counted.
systemd hears READY once the state is rebuilt and the engines run, WATCHDOG only while the order path is
healthy, RELOADING around a SIGHUP reload and STOPPING on SIGTERM. A failure the order path cannot survive
(the event log cannot be written) makes the daemon exit 1 so that systemd restarts it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import uvloop

from config.settings import GatewayConfig
from gateway.control.admin import AdminServer
from gateway.control.sdnotify import Notifier
from gateway.service import Gateway

log = logging.getLogger("fixgw.daemon")

HOUSEKEEPING_S = 0.2
GC_FREEZE_S = 1.0
STALL_PROBE_S = 1.0
BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
CHECKPOINT_POLL_S = 1.0
STOP_CHECKPOINT_S = 15.0  # within systemd's TimeoutStopSec (30 s) with the sessions' logouts
ROOT = Path(__file__).resolve().parents[2]  # the tree gateway.control.checkpoint is run from


def order_path_health(gw: Gateway, probe_s: float = STALL_PROBE_S) -> str | None:
    """None when healthy, else why not. The order path holds the router lock for microseconds per message;
    not getting it within a second means a thread is stuck inside it."""
    if gw.events.failed is not None:
        return f"event log cannot be written: {gw.events.failed}"
    if not gw.router.responsive(probe_s):
        return "order path stalled: the router lock was not released within a second"
    return None


@dataclass
class Supervisor:
    gw: Gateway
    fatal: asyncio.Event = field(default_factory=asyncio.Event)
    fatal_reason: str = ""
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    def spawn(self, name: str, factory: Callable[[], Awaitable[object]]) -> None:
        self.tasks[name] = asyncio.create_task(self._keep(name, factory), name=name)

    async def _keep(self, name: str, factory: Callable[[], Awaitable[object]]) -> None:
        failures = 0
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
                failures += 1
                self.gw.metrics.task_restarts.labels(name).inc()
                log.exception("control-plane task died; restarting", extra={"task": name, "in_s": delay,
                                                                           "failures": failures})
                await asyncio.sleep(delay)

    def die(self, reason: str) -> None:
        self.fatal_reason = reason
        self.fatal.set()

    async def cancel_all(self) -> None:
        for t in self.tasks.values():
            t.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)


async def housekeeping(gw: Gateway, sup: Supervisor) -> None:
    last_freeze = time.monotonic()
    while True:
        await asyncio.sleep(HOUSEKEEPING_S)
        if time.monotonic() - last_freeze > GC_FREEZE_S:
            # The ledger only grows during a day: move what survived into the permanent generation so that
            # no collection rescans it (a full one over 150k orders stalled the sessions for >1 s). Every
            # second keeps each older-generation collection to about a second's survivors (~2 ms); freezing
            # itself is a list splice. Gen 0 is collected first so that short-lived cycles are not frozen.
            gc.collect(0)
            gc.freeze()
            last_freeze = time.monotonic()
        if gw.events.failed is not None:
            sup.die(f"event log cannot be written: {gw.events.failed}")
            return
        await asyncio.to_thread(gw.housekeeping)


async def make_checkpoint(gw: Gateway) -> dict[str, object] | None:
    """Run `python -m gateway.control.checkpoint` on this configuration; what it wrote, or None when it failed (a
    start then replays more of the day: slower, never wrong)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.control.checkpoint", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await proc.communicate(gw.cfg.model_dump_json().encode())
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        gw.alert("CHECKPOINT_FAILED")
        log.error("CHECKPOINT_FAILED: a start replays the day from the last good checkpoint; see "
                  "docs/runbooks/CHECKPOINT_FAILED.md",
                  extra={"rc": proc.returncode, "stderr": err.decode(errors="replace")[-2000:]})
        return None
    result: dict[str, object] = json.loads(out.decode().strip().splitlines()[-1])
    log.info("checkpoint written" if result.get("seq") else "checkpoint up to date",
             extra={**result, "wall_s": round(time.monotonic() - t0, 3)})
    return result


async def checkpointer(gw: Gateway, every_events: int) -> None:
    """Keep the checkpoint (gateway.control.checkpoint) within `every_events` of the event log's end. The replay runs
    in a child process: this loop only waits for it, and the order path neither pauses nor shares the GIL."""
    tried = gw.checkpoint_seq  # the log's end when a checkpoint was last attempted
    while True:
        await asyncio.sleep(CHECKPOINT_POLL_S)
        if gw.events.seq - tried < every_events:
            continue
        tried = gw.events.seq  # after a failure: again after another `every_events`, not in a tight loop
        result = await make_checkpoint(gw)
        if result and result.get("seq"):
            gw.checkpoint_seq = int(result["seq"])  # type: ignore[call-overload]
            tried = gw.checkpoint_seq


async def watchdog(gw: Gateway, notifier: Notifier, interval_s: float) -> None:
    healthy = True
    while True:
        reason = await asyncio.to_thread(order_path_health, gw)
        if reason is None:
            notifier.watchdog()
            if not healthy:
                log.warning("order path healthy again: watchdog keep-alives resume")
                notifier.status("serving")
            healthy = True
        elif healthy:
            log.error("order path unhealthy: watchdog keep-alives withheld", extra={"reason": reason})
            notifier.status(f"unhealthy: {reason}")
            healthy = False
        await asyncio.sleep(interval_s)


def next_end_of_day(now: dt.datetime, at_utc: str) -> dt.datetime:
    """The first HH:MM UTC strictly after `now`."""
    hh, mm = (int(x) for x in at_utc.split(":"))
    due = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return due if due > now else due + dt.timedelta(days=1)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def end_of_day(gw: Gateway, at_utc: str, clock: Callable[[], dt.datetime] = _utc_now,
                     once: bool = False) -> list[Path]:
    """Write the day's reconciliation reports at the configured UTC time, every day (or once, for tests)."""
    while True:
        now = clock()
        due = next_end_of_day(now, at_utc)
        await asyncio.sleep((due - now).total_seconds())
        day = due.strftime("%Y%m%d")
        paths = await asyncio.to_thread(gw.write_recon_reports, day)
        log.info("end-of-day reconciliation written", extra={"day": day, "files": [str(p) for p in paths]})
        if once:
            return paths


async def trading_day_rollover(gw: Gateway) -> None:
    """[trading_day] rollover_at, Monday to Friday; a rollover missed while the gateway was down runs at once."""
    from gateway.orders import trading_day as td

    tdc = gw.cfg.trading_day
    at = tdc.rollover_at or ""
    if gw.day_started < td.last_rollover(gw.clock(), at, tdc.time_zone):
        await _roll(gw, f"rollover_at {at} {tdc.time_zone} passed while the gateway was down")
    while True:
        now = gw.clock()
        due = td.next_rollover(now, at, tdc.time_zone)
        await asyncio.sleep((due - now).total_seconds())
        if gw.day_started < due:  # not when the clock stepped back past a rollover already made
            await _roll(gw, f"rollover_at {at} {tdc.time_zone}")


async def _roll(gw: Gateway, why: str) -> None:
    try:
        res = await asyncio.to_thread(gw.rollover, "scheduler", why)
        log.info("scheduled rollover done", extra={"day": res["day"], "seconds": res["seconds"]})
    except Exception:
        gw.alert("ROLLOVER_FAILED")
        log.exception("ROLLOVER_FAILED: the trading day did not roll over; the old day goes on; see "
                      "docs/runbooks/ROLLOVER_FAILED.md")


async def serve(gw: Gateway, stop: asyncio.Event, notifier: Notifier | None = None,
                admin_path: Path | None = None, reload_flag: asyncio.Event | None = None) -> int:
    """Run until `stop` is set (exit 0) or the order path fails for good (exit 1)."""
    notifier = notifier or Notifier.from_env()
    sup = Supervisor(gw)
    admin = AdminServer(gw, admin_path or gw.cfg.admin_socket)
    console: Any = None
    gw.start()
    # Every QuickFIX call releases the GIL; a message thread that then waits for it behind the journal or
    # housekeeping would wait up to the 5 ms default switch interval. 0.2 ms bounds that wait.
    sys.setswitchinterval(0.0002)
    gc.freeze()  # start-up objects (config, kernels, replayed ledger) need no more collections
    try:
        await admin.start()
        sup.spawn("housekeeping", lambda: housekeeping(gw, sup))
        sup.spawn("admin", admin.serve_forever)
        if gw.cfg.console is not None:
            from gateway.control.console.app import Console

            console = Console(gw, admin, gw.cfg.console)
            await console.start()  # a port in use fails the start, as the admin socket does
            sup.spawn("console", console.serve_forever)
        interval = notifier.watchdog_interval_s
        if interval is not None:
            sup.spawn("watchdog", lambda: watchdog(gw, notifier, interval))
        if gw.cfg.gateway.checkpoint_every_events:
            sup.spawn("checkpoint", lambda: checkpointer(gw, gw.cfg.gateway.checkpoint_every_events))
        if gw.cfg.trading_day.rollover_at:
            sup.spawn("rollover", lambda: trading_day_rollover(gw))
        if gw.cfg.reconciliation.end_of_day_utc:
            sup.spawn("end-of-day", lambda: end_of_day(gw, gw.cfg.reconciliation.end_of_day_utc or ""))
        reload_flag = reload_flag or asyncio.Event()
        sup.spawn("reload", lambda: reloader(gw, notifier, reload_flag))
        notifier.ready("serving")
        log.info("ready", extra={"admin_socket": str(admin.path), "watchdog_s": interval})
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(sup.fatal.wait())]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()
    finally:
        notifier.stopping("stopping: logging sessions out")
        log.info("stopping: no new orders, logging sessions out")
        await sup.cancel_all()
        if console is not None:
            await console.close()
        await admin.close()
        await asyncio.to_thread(gw.stop)
        if gw.cfg.gateway.checkpoint_every_events:
            # The log is closed: a checkpoint of all of it makes the next start replay nothing.
            notifier.stopping("stopping: writing a checkpoint")
            try:
                await asyncio.wait_for(make_checkpoint(gw), STOP_CHECKPOINT_S)
            except asyncio.TimeoutError:
                gw.alert("CHECKPOINT_FAILED")
                log.warning("CHECKPOINT_FAILED: no checkpoint at the stop, it took too long; the next start "
                            "replays more; see docs/runbooks/CHECKPOINT_FAILED.md",
                            extra={"limit_s": STOP_CHECKPOINT_S})
    if sup.fatal.is_set():
        log.critical("exiting for a restart", extra={"reason": sup.fatal_reason})
        return 1
    return 0


async def reloader(gw: Gateway, notifier: Notifier, flag: asyncio.Event) -> None:
    while True:
        await flag.wait()
        flag.clear()
        notifier.reloading("reloading limits and reference data")
        try:
            version = await asyncio.to_thread(gw.reload_risk, "SIGHUP", "systemctl reload / SIGHUP")
            notifier.ready_after_reload(f"serving; limits {version}")
        except Exception as e:
            notifier.ready_after_reload(f"serving; reload refused, old limits in force: {e}")


class StartupKeepAlive:
    """Asks systemd for more start-up time (EXTEND_TIMEOUT_USEC) every `every_s` while the body runs.

    Rebuilding the state replays the current trading day's event log and the reconciliation's unsettled
    records (about 0.1 ms per filled order of the day here): a busy day must not make TimeoutStartSec kill a
    healthy start and put the service into a restart loop. A start that hangs still ends: the requests stop
    after `max_s`.
    """

    def __init__(self, notifier: Notifier, every_s: float = 5.0, extend_s: float = 20.0,
                 max_s: float = 1800.0, status: str = "starting: rebuilding state from the event log") -> None:
        self._notifier, self._every_s, self._extend_s, self._max_s = notifier, every_s, extend_s, max_s
        self._status = status
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def __enter__(self) -> StartupKeepAlive:
        if self._notifier.enabled:
            self._thread = threading.Thread(target=self._run, name="startup-keepalive", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        deadline = time.monotonic() + self._max_s
        while time.monotonic() < deadline:
            self._notifier.extend_timeout(self._extend_s)
            self._notifier.status(self._status)
            self.sent += 1
            if self._done.wait(self._every_s):
                return


def run(cfg: GatewayConfig) -> int:
    async def main() -> int:
        stop, reload_flag = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload_flag.set)
        notifier = Notifier.from_env()
        with StartupKeepAlive(notifier):
            gw = Gateway(cfg)
        return await serve(gw, stop, notifier=notifier, reload_flag=reload_flag)

    return uvloop.run(main())

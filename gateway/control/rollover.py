"""The trading-day rollover of a running gateway (`fixgw admin rollover`, or [trading_day] rollover_at).

In order:
1. sessions whose agreement starts each day at MsgSeqNum 1 (`rollover_reset`) are logged out: their QuickFIX
   engine stops (a client among others that run on is held out instead);
2. under the order path's lock (orders wait, none is lost): the rollover is journaled on the old day, the
   carried state becomes the first events of the new day's event log and the old day's log is archived (one
   atomic step, gateway.events.log.roll), and the ledger and risk state are rebuilt from those events alone;
3. outside it: the engines of those sessions start again with a reset store and new message logs (the old
   day's logs move into the archive); sessions that run through the rollover keep their logs and stores;
   the reconciliation writes the old day's
   report into the archive and forgets its settled pairs; the start-of-day positions file is compared with
   what was carried; archived days past retention are deleted.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import gc
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.fix import sessions
from gateway.fix.sessions import SessionID, session_key

from config.errors import ConfigError
from config.positions import load_positions
from gateway.orders import trading_day as td

if TYPE_CHECKING:
    from gateway.service import Gateway

log = logging.getLogger("fixgw.rollover")

LOGOUT_WAIT_S = 10.0
ROLE_DIRS = {"client": "clients", "venue": "venue", "dropcopy": "dropcopy", "marketdata": "marketdata"}


class RolloverError(RuntimeError):
    pass


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def resetting_sessions(gw: Gateway) -> dict[str, bool]:
    """Session key -> whether its agreement resets MsgSeqNum at the start of each trading day."""
    cfg = gw.cfg
    out: dict[str, bool] = {}
    for c in cfg.acceptor.clients:
        out[session_key(c.target_comp_id, c.sender_comp_id)] = c.rollover_reset
    out[session_key(cfg.venue.sender_comp_id, cfg.venue.target_comp_id)] = cfg.venue.rollover_reset
    d = cfg.dropcopy
    if d is not None and d.enabled:
        out[session_key(d.sender_comp_id, d.target_comp_id)] = d.rollover_reset
    md = cfg.marketdata
    if md is not None and md.enabled:
        out[session_key(md.sender_comp_id, md.target_comp_id)] = md.rollover_reset
    return out


def ids_kept_sessions(gw: Gateway) -> frozenset[str]:
    """Client sessions whose ClOrdIDs must stay unique across the boundary: those whose sequence numbers do
    not restart with the day (a client that starts at 1 each day also starts its ClOrdIDs afresh)."""
    keep = set()
    for c in gw.cfg.acceptor.clients:
        schedule = getattr(c, "schedule", None)
        daily = schedule is not None and getattr(schedule, "sequence_reset", "") == "daily"
        if not (c.rollover_reset or c.reset_on_logon or daily):
            keep.add(session_key(c.target_comp_id, c.sender_comp_id))
    return frozenset(keep)


def _hold_out(held: dict[str, SessionID]) -> list[str]:
    """Log the sessions out and keep them out (disabled) until released; waits for each logout."""
    for key, sid in held.items():
        s = sessions.lookup(sid)
        if s is not None:
            s.logout("end of trading day: sequence numbers restart at 1")
    deadline = time.monotonic() + LOGOUT_WAIT_S
    still = list(held)
    while still and time.monotonic() < deadline:
        still = [k for k in still if (s := sessions.lookup(held[k])) is not None and s.isLoggedOn()]
        if still:
            time.sleep(0.05)
    return still


def _move_files(src: Path, dest: Path) -> int:
    if not src.is_dir():
        return 0
    n = 0
    for p in src.iterdir():
        if p.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            p.replace(dest / p.name)
            n += 1
    return n


def _engine_resets(gw: Gateway) -> tuple[list[str], dict[str, SessionID]]:
    """Engines to restart (every session of theirs resets with the day), and sessions to reset one by one (a
    client that resets while other clients of the same acceptor run on)."""
    resets = resetting_sessions(gw)
    sids = gw.session_ids()
    roles: dict[str, list[str]] = {}
    for key, (role, _) in sids.items():
        roles.setdefault(ROLE_DIRS[role], []).append(key)
    whole = [r for r, keys in roles.items() if all(resets.get(k) for k in keys)]
    single = {k: sids[k][1] for r, keys in roles.items() if r not in whole for k in keys if resets.get(k)}
    return whole, single


def _trim_heap() -> None:
    """Hand the freed day back to the OS. glibc keeps freed memory in the arena of the thread that allocated
    it, and every rollover allocates from new threads (restarted engines, the admin worker): without a trim each
    rollover left about 12 MiB behind until the arenas were full (measured with bench/soak --days)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        pass


def _restart_sessions(gw: Gateway, restart: list[str], singles: dict[str, SessionID],
                      sids: dict[str, tuple[str, SessionID]], held: set[str], not_out: list[str], rolled: bool,
                      day_dir: Path) -> int:
    """Bring the reset sessions back, each on its own: one that fails is logged and the others still come up.
    Returns how many message-log files went to the archive."""
    state, archived = gw.cfg.state_dir, 0
    for role in restart:  # message logs go with their day; the store starts again at MsgSeqNum 1
        try:
            if rolled:
                if gw.cfg.gateway.fix_message_log:
                    archived += _move_files(state / "fixlog" / role, day_dir / "fixlog" / role)
                for p in (state / "store" / role).glob("*"):
                    if p.is_file():
                        p.unlink()
            gw.start_engine(role)
        except Exception:
            log.exception("rollover: an engine did not start again", extra={"role": role})
            gw.alert("ROLLOVER_FAILED")
    for key, sid in singles.items():
        s = sessions.lookup(sid)
        if s is None:
            continue
        try:
            if rolled and key not in not_out:
                s.reset()  # logged out and held: its store starts again at 1; its log runs on
            if key not in held:
                s.logon()
        except Exception:
            log.exception("rollover: a session did not come back", extra={"session": key})
            gw.alert("ROLLOVER_FAILED")
    for key in held:  # a restarted engine enables every session: put the holds back
        s = sessions.lookup(sids[key][1])
        if s is not None and s.isEnabled():
            s.logout("held out before the rollover")
    return archived


def run(gw: Gateway, who: str, why: str, now: dt.datetime | None = None) -> dict[str, Any]:
    if not who or not why:
        raise ValueError("who and why are required for every operator action")
    if not gw.rollover_lock.acquire(blocking=False):
        raise RolloverError("a rollover is already running")
    try:
        return _run(gw, who, why, now or gw.clock())
    finally:
        gw.rollover_lock.release()


def _run(gw: Gateway, who: str, why: str, now: dt.datetime) -> dict[str, Any]:
    t0 = time.monotonic()
    cfg, router = gw.cfg, gw.router
    tdc = cfg.trading_day
    # The mirrors a start's reconciliation rebuild puts right are part of what the day hands over.
    if not gw.recon_feed.wait_rebuilt():
        raise RolloverError("the reconciliation is still rebuilding after the start; try again")
    previous = gw.trading_day
    new = td.next_day(previous, now, tdc.time_zone)
    day_dir = cfg.archive_dir / previous
    if (day_dir / "events.log").exists():  # a folder alone may be what a failed roll left: no archive yet
        raise RolloverError(f"{day_dir / 'events.log'} exists already: day {previous} was archived before")
    restart, singles = _engine_resets(gw)
    sids = gw.session_ids()
    # Sessions whose logout here is the day's end, not a client going away: no cancel-on-disconnect for them.
    resetting = {k for k, (role, _) in sids.items() if ROLE_DIRS[role] in restart} | set(singles)
    # An operator's or a schedule's hold outlives the rollover: those sessions come back disabled.
    held = {k for k in resetting if (s := sessions.lookup(sids[k][1])) is not None and not s.isEnabled()}
    gw.planned_logouts |= resetting
    clients = {k for k in resetting if sids[k][0] == "client"}
    router.hold_reports(clients)
    rolled = False
    not_out: list[str] = []
    try:
        for role in restart:  # the engine logs its sessions out: no traffic while the day turns
            gw.stop_engine(role)
        not_out = _hold_out(singles)
        if not_out:
            log.error("sessions did not log out for the rollover: their sequence numbers run on",
                      extra={"sessions": not_out})
        keep_ids = ids_kept_sessions(gw)
        t_lock = time.monotonic()
        day_open, positions = router.roll_day(new, previous, who, why, tdc.carry_kill_switches, tdc.carry_reduce_only,
                                              keep_ids, day_dir / "events.log")
        rolled = True
        gw.trading_day = new
        gw.day_started = now
        t_locked = time.monotonic() - t_lock
    finally:
        archived_logs = _restart_sessions(gw, restart, singles, sids, held, not_out, rolled, day_dir)
        reports_held = router.release_reports(clients)
        gw.planned_logouts -= resetting
    gw.journal.flush()

    reports: list[str] = []
    if gw.recon_feed.enabled:
        gw.recon_feed.drain()
        reports = [str(p) for p in gw.recon.write_reports(previous, day_dir / "reconciliation")]
        forgotten = gw.recon.new_trading_day()
    else:
        forgotten = 0

    differences: list[dict[str, Any]] = []
    sod_error = None
    if cfg.risk is not None and cfg.risk.positions is not None and gw.risk is not None:
        try:
            sod = load_positions(cfg.risk.positions, gw.risk.engine.cfg)
            differences = td.compare_positions(positions, sod)
        except ConfigError as e:
            sod_error = str(e)
            log.error("start-of-day positions file unusable at the rollover: the carried positions stand",
                      extra={"error": sod_error})
            gw.alert("SOD_POSITIONS_FILE_INVALID")
        for d in differences:
            log.error("SOD_POSITION_MISMATCH: the carried position differs from the start-of-day file; the carried "
                      "one stands; see docs/runbooks/SOD_POSITION_MISMATCH.md", extra=d)
        if differences:
            gw.alert("SOD_POSITION_MISMATCH")
    if day_open:
        gw.alert("DAY_ORDER_CARRIED")
        log.warning("DAY_ORDER_CARRIED: DAY orders were still open at the rollover and carry into the new day; "
                    "see docs/runbooks/DAY_ORDER_CARRIED.md", extra={"count": len(day_open), "orders": day_open[:50]})
    pruned = td.prune_archive(cfg.archive_dir, tdc.retention_days)
    # The daemon freezes survivors so that collections never rescan the day's book; yesterday's objects are
    # garbage now, and a frozen cycle is never collected: one full collection here, off the order path's lock.
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _trim_heap()
    result = {"previous_day": previous, "day": new, "who": who, "why": why,
              "open_orders": router.read(lambda ledger, _risk: len(ledger.open)), "day_orders_open": day_open,
              "positions_carried": len(positions), "sod_differences": differences, "sod_file_error": sod_error,
              "engines_restarted": restart, "sessions_reset": sorted(k for k in singles if k not in not_out),
              "sessions_not_logged_out": not_out,
              "fix_logs_archived": archived_logs, "reports_held_for_reset_sessions": reports_held,
              "recon_reports": reports, "recon_pairs_forgotten": forgotten,
              "archive": str(day_dir), "archive_days_deleted": pruned,
              "order_path_paused_s": round(t_locked, 4), "seconds": round(time.monotonic() - t0, 3)}
    gw.metrics.rollovers.inc()
    log.warning("trading day rolled over", extra={k: v for k, v in result.items() if k != "day_orders_open"})
    return result


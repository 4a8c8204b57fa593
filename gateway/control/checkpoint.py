"""Checkpoints of the order-path state, so that a start late in a busy day replays minutes, not the whole day.

A checkpoint is exactly what replaying the current day's event log up to a byte offset builds: the ledger and
the risk engine's buffers. It is made by a separate process (`python -m gateway.control.checkpoint`, started by the
daemon every `[gateway] checkpoint_every_events` events and at a clean stop; `fixgw checkpoint` by hand) that
reads the append-only log the daemon writes and resumes from the previous checkpoint. The daemon neither
pauses nor locks for it, and the replay runs outside its GIL at the lowest priority; on cores that are already
busy it still competes for them (docs/performance.md has what that costs the order path's p99).

It is a cache. The event log stays the only source of truth, and a start uses a checkpoint only when it still
describes that log: the same day (the log's first line), the same bytes where it stops, the same risk files
(their content hash), sessions and order slots, and the same replay code (a hash of its source). Anything
else, or a checkpoint that cannot be read, and the start replays the whole day as it always did.

The checkpoint stops before the first gateway fill the reconciliation store does not hold yet (its writer
runs behind the event log), so a start only needs to catch the reconciliation up from what follows it.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import json
import logging
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from gateway.events.schema import AnyEvent, Execution, decode
from gateway.orders.ledger import Ledger, Order, Request
from gateway.orders.lifecycle import replay_log

if TYPE_CHECKING:
    from config.risk_models import RiskConfig
    from config.settings import GatewayConfig
    from gateway.orders.risk_stage import RiskStage

log = logging.getLogger("fixgw.checkpoint")

FILE_NAME = "checkpoint.bin"
FORMAT = 1
NICE = 19  # background work: the gateway's own threads, and whatever shares its cores, come first
# The modules whose code decides what a replay builds: a checkpoint made by other code is not used.
_REPLAY_CODE = ("gateway/control/checkpoint.py", "gateway/orders/lifecycle.py", "gateway/orders/ledger.py",
                "gateway/orders/risk_stage.py", "gateway/orders/trading_day.py", "gateway/events/schema.py",
                "risk/controls.py",
                "risk/engine.py", "risk/kernel.py", "risk/state.py", "risk/decision.py", "risk/reasons.py")
_ROOT = Path(__file__).resolve().parents[2]
_ORDER_FIELDS = tuple(f.name for f in dataclasses.fields(Order))  # Order(*row) rebuilds one


@functools.cache
def code_hash() -> str:
    """Of the replay's source: code that could replay differently never resumes another's checkpoint."""
    h = hashlib.sha256()
    for rel in _REPLAY_CODE:
        h.update(rel.encode())
        h.update((_ROOT / rel).read_bytes())
    return h.hexdigest()[:16]


def fingerprint(risk_cfg: RiskConfig | None, sessions: list[str], max_orders: int) -> str:
    """What, besides the event log, decides the state a replay builds."""
    parts = [FORMAT, code_hash(), risk_cfg.limits_version if risk_cfg is not None else None, sessions, max_orders]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


@dataclass
class Checkpoint:
    offset: int  # bytes of the event log replayed into it (a line boundary)
    seq: int  # the sequence number of the last event replayed
    ledger: Ledger
    risk: tuple[np.ndarray, np.ndarray, dict[str, Any]] | None  # the risk engine's buffers, the controls' state


def path_of(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


# ---------------------------------------------------------------------------------------------- encoding
def _encode_ledger(ledger: Ledger) -> dict[str, Any]:
    # Plain tuples of strings and floats: pickled and rebuilt several times faster than the objects themselves.
    return {
        "orders": [tuple(getattr(o, f) for f in _ORDER_FIELDS) for o in ledger.orders.values()],
        "open": list(ledger.open),
        "requests": [(r.order.number, r.kind, r.cl_ord_id, r.orig_cl_ord_id, r.venue_cl_ord_id,
                      r.venue_orig_cl_ord_id, r.qty, r.price) for r in ledger.by_venue.values()],
        "by_client": [(s, cl, r.venue_cl_ord_id) for (s, cl), r in ledger.by_client.items()],
        "exec_ids": list(ledger.exec_ids),
        "fills": list(ledger.fills.items()),
        "rejected_ids": list(ledger.rejected_ids),
        "prior_ids": list(ledger.prior_ids),
        "next_number": ledger.next_number,
        "next_request": ledger.next_request,
        "short_filled": list(ledger.short_filled.items()),
    }


def _decode_ledger(d: dict[str, Any]) -> Ledger:
    orders = {t[0]: Order(*t) for t in d["orders"]}
    by_venue = {t[4]: Request(orders[t[0]], *t[1:]) for t in d["requests"]}
    ledger = Ledger(by_client={(s, cl): by_venue[v] for s, cl, v in d["by_client"]}, by_venue=by_venue,
                    orders=orders, exec_ids=set(map(tuple, d["exec_ids"])), fills=dict(d["fills"]),
                    rejected_ids=set(map(tuple, d["rejected_ids"])), prior_ids=set(map(tuple, d["prior_ids"])),
                    open={n: orders[n] for n in d["open"]}, next_number=d["next_number"],
                    next_request=d["next_request"], short_filled=dict(d["short_filled"]))
    ledger.reindex()
    return ledger


def write(state_dir: Path, fp: str, first_line: bytes, last_line: bytes, cp: Checkpoint) -> Path:
    """Atomically: a crash leaves the previous checkpoint or this one, never a torn file under the name."""
    path = path_of(state_dir)
    for old in state_dir.glob(f"{FILE_NAME}.*.tmp"):  # left by a writer that died (no writer runs an hour)
        if time.time() - old.stat().st_mtime > 3600:
            old.unlink(missing_ok=True)
    # A name of its own: a checkpoint made by hand (`fixgw checkpoint`) may run beside the daemon's.
    tmp = path.with_name(f"{FILE_NAME}.{os.getpid()}.tmp")
    header = {"format": FORMAT, "fingerprint": fp, "first_line": first_line, "last_line": last_line,
              "offset": cp.offset, "seq": cp.seq, "written_ns": time.time_ns()}
    with open(tmp, "wb") as f:
        pickle.dump(header, f, protocol=5)
        pickle.dump({"ledger": _encode_ledger(cp.ledger), "risk": cp.risk}, f, protocol=5)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)
    fd = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _still_describes(header: dict[str, Any], log_file: BinaryIO) -> bool:
    """The log is the one the checkpoint was made from: same first line, same last line at the offset."""
    first = log_file.readline()
    offset, last = int(header["offset"]), header["last_line"]
    if first != header["first_line"] or offset < len(last):
        return False
    log_file.seek(offset - len(last))
    return log_file.read(len(last)) == last


def load(state_dir: Path, log_file: BinaryIO, fp: str) -> Checkpoint | None:
    """The checkpoint, when it still describes the (open) event log and was made under the same
    configuration and code; None otherwise, and the caller replays the whole day."""
    path = path_of(state_dir)
    if not path.exists():
        return None
    try:
        with open(path, "rb") as f:
            header = pickle.load(f)
            if header.get("format") != FORMAT or header.get("fingerprint") != fp:
                log.info("checkpoint not used: made under other risk files or code", extra={"file": str(path)})
                return None
            log_file.seek(0)
            if not _still_describes(header, log_file):
                log.info("checkpoint not used: it describes another event log", extra={"file": str(path)})
                return None
            body = pickle.load(f)
        return Checkpoint(int(header["offset"]), int(header["seq"]), _decode_ledger(body["ledger"]), body["risk"])
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, IndexError, TypeError, ValueError,
            AttributeError) as e:
        log.warning("checkpoint unreadable: replaying the whole day", extra={"file": str(path), "error": repr(e)})
        return None


def read_events(log_file: BinaryIO, offset: int) -> tuple[list[AnyEvent], list[bytes]]:
    """The complete lines from `offset` on (a line still being written is left for later): parsed, and as
    they are (without their newlines)."""
    log_file.seek(offset)
    lines = log_file.read().split(b"\n")[:-1]  # the piece after the last newline is not a complete line
    return [decode(line) for line in lines], lines


# ---------------------------------------------------------------------------------------------- making one
def _risk_stage(risk_cfg: RiskConfig | None, sessions: list[str], ledger: Ledger, max_orders: int,
                buffers: tuple[Any, ...] | None, controls: Any) -> RiskStage | None:
    from gateway.orders.risk_stage import RiskStage
    return (RiskStage(risk_cfg, sessions, ledger.fills, max_orders, buffers=buffers, controls=controls)
            if risk_cfg is not None else None)


def make(cfg: GatewayConfig) -> Checkpoint | None:
    """Bring the checkpoint up to the end of the event log: resume from the last one, replay what follows,
    write it. Returns the new checkpoint (None when there was nothing new to add)."""
    from gateway.recon.feed import gateway_record, reconciliation_off_reason
    from gateway.recon.store import ReconStore, StoreVersionError
    from gateway.service import client_sessions, load_risk

    state = cfg.state_dir
    events_path = state / "events.log"
    if not events_path.exists():
        return None
    risk_cfg = load_risk(cfg)
    sessions = client_sessions(cfg)
    max_orders = cfg.gateway.max_open_orders
    fp = fingerprint(risk_cfg, sessions, max_orders)
    # One open file for all of it: a rollover may rename the log meanwhile, and a checkpoint must describe
    # one file (the old day's then, which no start will take for the new day's).
    with open(events_path, "rb") as lf:
        prev = load(state, lf, fp)
        ledger = prev.ledger if prev is not None else Ledger()
        risk = _risk_stage(risk_cfg, sessions, ledger, max_orders, prev.risk if prev is not None else None,
                           cfg.controls)
        start = prev.offset if prev is not None else 0
        lf.seek(0)
        first_line = lf.readline()
        events, lines = read_events(lf, start)
        if not events:
            return None
        # Only what the reconciliation store already holds: its writer runs behind the log, and a start
        # catches the reconciliation up from the checkpoint on.
        if reconciliation_off_reason(cfg) is None and (state / "recon.sqlite").exists():
            try:
                store = ReconStore(state / "recon.sqlite", migrate=False)  # only the gateway changes its schema
            except StoreVersionError as e:
                log.warning("no checkpoint: the reconciliation store is not this code's", extra={"reason": str(e)})
                return None
            try:
                for n, ev in enumerate(events):
                    # A fill the reconciliation refuses is never stored: it must not hold every later
                    # checkpoint back.
                    if (isinstance(ev, Execution) and ev.is_fill and (rec := gateway_record(ev)) is not None
                            and not store.has_fill(rec)):
                        if n == 0:
                            return None
                        events, lines = events[:n], lines[:n]
                        break
            finally:
                store.close()
    replay_log(events, ledger, risk)
    end = start + sum(map(len, lines)) + len(lines)
    cp = Checkpoint(end, events[-1].q, ledger, risk.snapshot() if risk is not None else None)
    write(state, fp, first_line, lines[-1] + b"\n", cp)
    return cp


def main() -> int:
    """`python -m gateway.control.checkpoint`: the configuration arrives as JSON on stdin (the daemon's own, whatever
    file it was read from); prints one JSON line with what was written."""
    from config.settings import GatewayConfig
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    cfg = GatewayConfig.model_validate(json.loads(sys.stdin.read()))
    os.nice(NICE)
    print(json.dumps(make_and_tell(cfg)), flush=True)
    return 0


def make_and_tell(cfg: GatewayConfig) -> dict[str, Any]:
    """make(), and what it wrote as one JSON-able line (seq None: the checkpoint was already up to date)."""
    gc.disable()  # building a large object graph without cycles: collections would only rescan it
    t0 = time.monotonic()
    try:
        cp = make(cfg)
    finally:
        gc.enable()
    return {"seq": cp.seq if cp else None, "offset": cp.offset if cp else None,
            "orders": len(cp.ledger.orders) if cp else None, "seconds": round(time.monotonic() - t0, 3)}


if __name__ == "__main__":
    sys.exit(main())

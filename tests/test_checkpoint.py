"""Checkpoints of the order-path state (gateway.control.checkpoint) over real sessions on 127.0.0.1: a start from a
checkpoint and its tail builds exactly what replaying the whole day builds; a checkpoint that no longer
describes the log, the risk files or the code is ignored; the checkpoint stops at a fill the reconciliation has
not stored; the daemon makes them in a child process."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gateway.control import checkpoint
from gateway.recon.store import ReconStore
from gateway.service import Gateway
from gwtest import write_config

ROOT = Path(__file__).resolve().parent.parent


def _plain(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _built(gw: Gateway) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray]]:
    """Everything a replay builds, in a form that compares equal when the states are the same."""
    enc = checkpoint._encode_ledger(gw.router.ledger)
    ledger = {k: sorted(_plain(v), key=repr) if isinstance(v, list) else v for k, v in enc.items()}
    return ledger, gw.risk.engine.snapshot()


def _rebuilt(cfg: Any) -> tuple[Gateway, tuple[dict[str, Any], tuple[np.ndarray, np.ndarray]]]:
    gw = Gateway(cfg)  # the state is rebuilt here; nothing is started, so nothing is appended
    return gw, _built(gw)


def _er(client: Any, cl: str, exec_type: str) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type, timeout=15)


def _flow(c: Any, tag: str) -> None:
    """Fills, partial fills, a resting order cancelled and one replaced, and a risk reject."""
    for n in range(6):
        c.new_order(f"{tag}F{n}", "ACC1", "AAPL", "1" if n % 2 else "2", 10 + n, 190.0)
        _er(c, f"{tag}F{n}", "F")
    c.new_order(f"{tag}P", "ACC1", "MSFT", "1", 20, 410.0)
    _er(c, f"{tag}P", "F")
    c.new_order(f"{tag}R1", "ACC1", "JPM", "1", 10, 200.0)
    c.new_order(f"{tag}R2", "ACC1", "JPM", "2", 10, 201.0)
    _er(c, f"{tag}R1", "0")
    _er(c, f"{tag}R2", "0")
    c.cancel(f"{tag}C1", f"{tag}R1", "JPM", "1", "ACC1")
    _er(c, f"{tag}C1", "4")
    c.replace(f"{tag}G2", f"{tag}R2", "JPM", "2", 15, 202.0, "ACC1")
    _er(c, f"{tag}G2", "5")
    c.new_order(f"{tag}X", "ACC1", "AAPL", "1", 10_000_000, 190.0)  # far past every limit
    _er(c, f"{tag}X", "8")


def _stop_all(stack: Any) -> Any:
    """Clients and gateway down, the venue simulator still up."""
    for c in list(stack.clients):
        stack.stop_client(c)
    stack.stop_gateway()
    return stack.cfg


def test_a_start_from_a_checkpoint_builds_what_the_whole_day_builds(running) -> None:
    gw = running.gw
    c = running.client()
    _flow(c, "A")
    running.gw.recon_feed.drain()
    cp = checkpoint.make(gw.cfg)
    assert cp is not None and cp.seq > 0 and len(cp.ledger.orders) == 9  # the risk reject is no order
    _flow(c, "B")  # the tail a start replays after the checkpoint
    cfg = _stop_all(running)

    warm, from_cp = _rebuilt(cfg)
    assert warm.checkpoint_seq == cp.seq
    warm.stop()
    checkpoint.path_of(cfg.state_dir).unlink()
    cold, whole_day = _rebuilt(cfg)
    assert cold.checkpoint_seq == 0
    cold.stop()
    assert from_cp[0] == whole_day[0]
    assert np.array_equal(from_cp[1][0], whole_day[1][0], equal_nan=True)
    assert np.array_equal(from_cp[1][1], whole_day[1][1])
    # per flow: the MSFT partial and the replaced JPM order stay open
    assert len(from_cp[0]["orders"]) == 18 and len(from_cp[0]["open"]) == 4


def test_after_a_start_from_a_checkpoint_duplicates_fills_and_positions_hold(running) -> None:
    c = running.client()
    _flow(c, "A")
    running.gw.recon_feed.drain()
    assert checkpoint.make(running.gw.cfg) is not None
    before = running.gw.risk.engine.position(0, running.gw.risk.engine.instrument_index("AAPL"))
    _stop_all(running)
    running.start_gateway()
    assert running.gw.checkpoint_seq > 0
    c = running.client()
    e = running.gw.risk.engine
    assert e.position(0, e.instrument_index("AAPL")) == before != 0
    c.new_order("AF0", "ACC1", "AAPL", "1", 10, 190.0)  # a ClOrdID used before the checkpoint
    rej = _er(c, "AF0", "8")
    assert rej[58].startswith("DUPLICATE_CLORDID")
    c.new_order("N1", "ACC1", "AAPL", "1", 7, 190.0)
    _er(c, "N1", "F")
    assert e.position(0, e.instrument_index("AAPL")) == before + 7
    c.replace("G3", "AG2", "JPM", "2", 12, 202.0, "ACC1")  # the order replaced before the checkpoint
    _er(c, "G3", "5")


def test_a_checkpoint_that_no_longer_describes_the_log_or_the_limits_is_not_used(running, tmp_path) -> None:
    c = running.client()
    _flow(c, "A")
    running.gw.recon_feed.drain()
    assert checkpoint.make(running.gw.cfg) is not None
    cfg = _stop_all(running)
    path = checkpoint.path_of(cfg.state_dir)
    good = path.read_bytes()

    # other limits: the same log, but a replay under these files would build another state
    limits = tmp_path / "limits.toml"
    limits.write_text(Path(cfg.risk.limits).read_text() + "\n# changed\n")
    other = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"limits": limits})})
    gw = Gateway(other)
    assert gw.checkpoint_seq == 0
    gw.stop()

    # another log under the same name (what a rollover leaves): its first line differs
    events = cfg.state_dir / "events.log"
    original = events.read_bytes()
    first, rest = original.split(b"\n", 1)
    events.write_bytes(first.replace(b'"e":"INIT"', b'"e":"INIT","x":1') + b"\n" + rest)
    gw = Gateway(cfg)
    assert gw.checkpoint_seq == 0
    gw.stop()

    # a torn or foreign checkpoint file: replay the whole day, never fail the start
    events.write_bytes(original)
    path.write_bytes(good[: len(good) // 2])
    gw = Gateway(cfg)
    assert gw.checkpoint_seq == 0 and len(gw.router.ledger.orders) == 9
    gw.stop()


def test_the_checkpoint_stops_before_a_fill_the_reconciliation_has_not_stored(running) -> None:
    c = running.client()
    _flow(c, "A")
    gw = running.gw
    gw.recon_feed.drain()
    cfg = _stop_all(running)
    fills = [ev for ev in (json.loads(line) for line in (cfg.state_dir / "events.log").read_bytes().splitlines())
             if ev.get("e") == "X" and ev.get("x") == "F"]
    late = fills[3]
    with ReconStore(cfg.state_dir / "recon.sqlite") as store:  # as if the store's writer were behind the log
        store._db.execute("DELETE FROM fills WHERE source='gateway' AND exec_id=?", (late["id"],))
        store._db.commit()
    cp = checkpoint.make(cfg)
    assert cp is not None and cp.seq == late["q"] - 1
    running.start_gateway()  # its reconciliation catches up from the log after the checkpoint
    gw = running.gw
    assert gw.checkpoint_seq == cp.seq
    assert gw.recon_feed.drain(60)
    assert gw.recon.store._db.execute("SELECT COUNT(*) FROM fills WHERE source='gateway' AND exec_id=?",
                                      (late["id"],)).fetchone() == (1,)


def test_the_checkpoint_command_and_the_daemon_make_one(running) -> None:
    c = running.client()
    _flow(c, "A")
    running.gw.recon_feed.drain()
    cfg = running.gw.cfg
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "gateway.control.checkpoint"], input=cfg.model_dump_json().encode(),
                         capture_output=True, env=env, timeout=120, check=True)
    result = json.loads(out.stdout.decode().strip().splitlines()[-1])
    assert result["orders"] == 9 and result["seq"] > 0
    again = subprocess.run([sys.executable, "-m", "gateway.control.checkpoint"], input=cfg.model_dump_json().encode(),
                           capture_output=True, env=env, timeout=120, check=True)
    assert json.loads(again.stdout.decode().strip().splitlines()[-1])["seq"] is None  # nothing new since


def test_fixgw_checkpoint_by_hand(running) -> None:
    c = running.client()
    _flow(c, "A")
    running.gw.recon_feed.drain()
    cfg_path = write_config(running.gw.cfg, running.tmp / "gateway.toml")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "checkpoint", "--config", str(cfg_path)],
                         capture_output=True, env=env, timeout=120, check=True, cwd=ROOT)
    assert json.loads(out.stdout)["seq"] == running.gw.events.seq


def test_a_checkpoint_that_cannot_be_written_raises_its_alert(running) -> None:
    from gateway.control.daemon import make_checkpoint

    c = running.client()
    _flow(c, "A")
    running.gw.recon_feed.drain()
    checkpoint.path_of(running.gw.cfg.state_dir).mkdir()  # the rename onto it fails
    assert asyncio.run(make_checkpoint(running.gw)) is None
    assert running.gw.metrics.alerts.labels("CHECKPOINT_FAILED")._value.get() == 1


def test_a_fill_the_reconciliation_can_never_take_does_not_hold_checkpoints_back(running) -> None:
    c = running.client()
    _flow(c, "A")
    running.gw.recon_feed.drain()
    cfg = _stop_all(running)
    path = cfg.state_dir / "events.log"
    lines = path.read_bytes().splitlines(keepends=True)
    n, late = next((n, ev) for n, ev in enumerate(json.loads(line) for line in lines)
                   if ev.get("e") == "X" and ev.get("x") == "F")
    # As the router logs a venue fill whose TradeDate(75) is malformed: the reconciliation refuses it, now
    # and at every catch-up, so it will never be in the store.
    lines[n] = json.dumps({**late, "td": "2026-12-03"}, separators=(",", ":")).encode() + b"\n"
    path.write_bytes(b"".join(lines))
    with ReconStore(cfg.state_dir / "recon.sqlite") as store:
        store._db.execute("DELETE FROM fills WHERE source='gateway' AND exec_id=?", (late["id"],))
        store._db.commit()
    cp = checkpoint.make(cfg)
    assert cp is not None and cp.seq == json.loads(lines[-1])["q"]

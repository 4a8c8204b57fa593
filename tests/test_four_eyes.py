"""Limit changes under four eyes, on a running gateway with real FIX sessions: the proposer cannot approve, an
approved version is in force for the next order and after a restart, both names are journaled, and the plain
reload is refused when the configuration says four eyes."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.control import limits
from tests.gwtest import write_config


def _er(client: Any, cl: str, exec_type: str) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type)


def test_a_second_person_approves_and_the_version_is_in_force(stack: Any, tmp_path: Path) -> None:
    gw_section = stack.cfg.gateway.model_copy(update={"limit_changes": "four_eyes"})
    stack.cfg = stack.cfg.model_copy(update={"gateway": gw_section})
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    c.new_order("A1", "ACC1", "AAPL", "1", 300, 190.0)
    _er(c, "A1", "F")
    proposed = tmp_path / "proposed"
    proposed.mkdir()
    (proposed / "limits.toml").write_text(stack.cfg.risk.limits.read_text().replace("qty_max = 10_000",
                                                                                    "qty_max = 250"))
    with pytest.raises(ValueError, match="four_eyes"):
        gw.reload_risk("ops", "plain reload")
    res = limits.propose(gw, proposed, "alice", "tighter AAPL sizes")
    assert "| accept -> QTY_MAX | 1 |" in res["what_if"]  # today's A1 would have been refused
    version = res["version"]
    with pytest.raises(ValueError, match="a different person must approve"):
        limits.approve(gw, version, "alice", "self-approval")
    c.new_order("A2", "ACC1", "AAPL", "1", 300, 190.0)
    _er(c, "A2", "F")  # proposed is not in force
    limits.approve(gw, version, "bob", "reviewed the what-if")
    c.new_order("A3", "ACC1", "AAPL", "1", 300, 190.0)
    assert _er(c, "A3", "8")[58].startswith("QTY_MAX:")
    with pytest.raises(ValueError, match="is approved, not awaiting approval"):
        limits.approve(gw, version, "carol", "again")
    gw.journal.flush()
    from gateway.events import journal_query

    rows = [(r["action"], r["scope"], r["who"]) for r in journal_query.query(gw.journal.path, table="admin")]
    assert rows[-3:] == [("limits propose", f"limits:{version}", "alice"), ("reload", "limits", "bob"),
                         ("limits approve", f"limits:{version}", "bob")]
    approve_row = journal_query.query(gw.journal.path, table="admin")[-1]
    assert json.loads(approve_row["detail"])["proposer"] == "alice"
    # a restart loads the approved version, not the configured file
    stack.stop_gateway()
    stack.start_gateway()
    assert c.wait_logon(15)
    c.new_order("A4", "ACC1", "AAPL", "1", 300, 190.0)
    assert _er(c, "A4", "8")[58].startswith("QTY_MAX:")
    # history: who, when and the diff
    toml = write_config(stack.cfg, tmp_path / "gateway.toml")
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "limits", "history", "--config", str(toml)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"{version}  approved    proposed by alice" in out.stdout and "approved by bob" in out.stdout
    assert "-qty_max = 10_000" in out.stdout and "+qty_max = 250" in out.stdout
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", str(toml)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and f"in force: approved version {version}" in out.stdout, out


def test_the_command_line_goes_through_the_admin_socket(stack: Any, tmp_path: Path) -> None:
    import threading

    from gateway.control.admin import AdminServer

    stack.start_sim()
    gw = stack.start_gateway()
    server = AdminServer(gw, tmp_path / "admin.sock")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        proposed = tmp_path / "p"
        proposed.mkdir()
        (proposed / "limits.toml").write_text(stack.cfg.risk.limits.read_text().replace("qty_max = 10_000",
                                                                                        "qty_max = 9_000"))
        cli = [sys.executable, "-m", "gateway.cli", "limits"]
        out = subprocess.run([*cli, "propose", str(proposed), "--socket", str(server.path), "--who", "alice", "--why",
                              "smaller"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "decisions change" in out.stdout, out.stdout + out.stderr
        version = json.loads(out.stdout[: out.stdout.index("\n}") + 2])["version"]
        out = subprocess.run([*cli, "approve", version, "--socket", str(server.path), "--who", "alice"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "a different person must approve" in out.stdout
        (proposed / "limits.toml").write_text("[global]\nqty_max = -1\n")
        out = subprocess.run([*cli, "propose", str(proposed), "--socket", str(server.path), "--who", "alice", "--why",
                              "broken"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 1 and "limits.toml" in out.stdout  # refused, naming the file
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

"""`fixgw report controls` on a scripted day over real FIX sessions: the report holds that day's figures (as
counted by hand and as its own queries count them in the journal), names who changed what, and its HTML page
stands alone."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from config.settings import SurveillanceSettings
from gateway.control import controls_report as cr
from gateway.control import limits
from risk.reasons import CATALOGUE
from tests.gwtest import write_config

RULES = SurveillanceSettings(wash_window_s=60)


def _done(client: Any, cl: str, exec_type: str) -> None:
    """Until the order is rejected (8) or filled in full (F with OrdStatus 2)."""
    client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                    and (exec_type != "F" or m.get(39) == "2"), timeout=15)


def _scripted_day(stack: Any, tmp_path: Path) -> Any:
    stack.cfg = stack.cfg.model_copy(update={"surveillance": RULES})
    stack.start_sim()
    gw = stack.start_gateway()
    c = stack.client()
    c.new_order("B1", "ACC1", "AAPL", "1", 100, 190.0)
    _done(c, "B1", "F")
    c.new_order("S1", "ACC1", "AAPL", "2", 100, 190.0)  # sold at once: a wash trade
    _done(c, "S1", "F")
    c.new_order("Q1", "ACC1", "BAC", "1", 20_000, 35.0)  # over qty_max 10,000
    _done(c, "Q1", "8")
    c.new_order("W1", "ACC1", "GOOG", "1", 5_000, 170.0)  # 850k: over 80 % of notional_max 1M
    _done(c, "W1", "F")
    gw.set_switch("kill", "account", "ACC2", True, "ops-anna", "kill drill")
    c.new_order("K1", "ACC2", "AAPL", "1", 10, 190.0)
    _done(c, "K1", "8")
    gw.set_switch("kill", "account", "ACC2", False, "ops-anna", "drill over")
    gw.router.set_override("global", "qty_max", 30_000, time.time_ns() + 3600 * 10**9, "risk-carl",
                           "client block trade")
    c.new_order("O1", "ACC1", "BAC", "1", 20_000, 35.0)  # allowed by the override
    _done(c, "O1", "F")
    proposed = tmp_path / "proposed"
    proposed.mkdir()
    (proposed / "limits.toml").write_text(stack.cfg.risk.limits.read_text().replace("qty_max = 10_000",
                                                                                    "qty_max = 9_000"))
    version = limits.propose(gw, proposed, "alice", "smaller sizes")["version"]
    limits.approve(gw, version, "bob", "reviewed the what-if")
    c.new_order("A1", "ACC2", "AAPL", "1", 100, 190.0)
    _done(c, "A1", "F")
    fills = sum(1 for m in c.received if m.get(35) == "8" and m.get(150) == "F")
    assert gw.recon_feed.wait_seen("dropcopy", fills, timeout=15)
    gw.surveillance.flush()
    stack.stop_gateway()
    return fills


def _cell(md: str, label: str) -> tuple[str, str]:
    m = re.search(rf"^\| {re.escape(label)} \| ([^|]*?) \[(Q\d+)\] \|$", md, re.M)
    assert m, f"no row {label!r}"
    return m.group(1), m.group(2)


def test_the_report_of_a_scripted_day_holds_its_figures(stack: Any, tmp_path: Path) -> None:
    fills = _scripted_day(stack, tmp_path)  # as the client counted them
    toml = write_config(stack.cfg, tmp_path / "gateway.toml")
    day = time.strftime("%Y%m%d", time.gmtime())
    out = tmp_path / "report"
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "report", "controls", "--config", str(toml),
                          "--date", day, "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    md = (out / f"controls-{day}.md").read_text()
    # the day as scripted: 7 requests, 2 rejected, 1 warned, one wash trade, one kill switch use
    assert fills >= 5
    for label, value in (("requests checked", "7"), ("accepted", "4"), ("accepted with a warning (near a limit)", "1"),
                         ("rejected", "2"), ("fills", str(fills)), ("surveillance alerts", "1"),
                         ("kill-switch and reduce-only uses", "1"), ("circuit-breaker trips", "0"),
                         ("fills the gateway forwarded", str(fills)), ("fills the drop copy reported", str(fills))):
        assert _cell(md, label)[0] == value, label
    rts6 = {line.split(" | ")[0][2:]: line.split(" | ") for line in md.splitlines() if line.startswith("| Art. ")}
    assert rts6["Art. 15(1)(c)"][5].startswith("1 [")  # QTY_MAX: the rejects column
    assert rts6["Art. 12"][5].startswith("1 [") and "KILL_SWITCH_ACCOUNT 1" in rts6["Art. 12"][6]
    assert rts6["Art. 15(1)(b)"][4].startswith("1 [")  # NOTIONAL_MAX: the warnings column
    assert rts6["Art. 16"][3].startswith("1 [") and "WASH_TRADE 1" in rts6["Art. 16"][6]
    assert re.search(r"\| kill on \[Q\d+\] \| account:ACC2 \| ops-anna \| kill drill \|", md)
    assert re.search(r"\| override set \[Q\d+\] \| global \| qty_max = 30000 \| [0-9T:.-]+Z \| risk-carl \| "
                     r"client block trade \|", md)
    assert re.search(r"\| WASH_TRADE \[Q\d+\] \| ACC1 \| AAPL \| .* \| B1 S1 \|", md)
    assert "four eyes: proposed by alice, approved by bob" in md
    limits_rows = [line for line in md.splitlines() if line.startswith("| `")]
    assert len(limits_rows) == 3 and "+OVR-" in limits_rows[1]  # before, under the override, after the approval
    assert "| reject | STALE_REFERENCE_PRICE" not in md and "_nothing failed closed_" in md
    # every figure is what its own query, pasted from the report, counts in the journal
    queries = dict(re.findall(r"^\*\*(Q\d+)\*\* .*?\n\n```sql\n(.*?)\n```", md, re.M | re.S))
    dbs = {name: sqlite3.connect(stack.cfg.state_dir / name) for name in ("journal.sqlite", "recon.sqlite")}
    sources = dict(re.findall(r"^\*\*(Q\d+)\*\* .*\(`([a-z.]+)`\)$", md, re.M))
    checked = 0
    for value, ref in re.findall(r"\| ([0-9,.]+) \[(Q\d+)\] \|", md):
        rows = list(dbs[sources[ref]].execute(queries[ref]))
        got = [r[-1] for r in rows]
        if "GROUP BY" in queries[ref]:  # the figure is one group's count (or none: 0)
            assert float(value.replace(",", "")) in [v for r in rows for v in r] + [0], ref
        else:
            assert got == [float(value.replace(",", ""))], ref
        checked += 1
    assert checked >= 25
    page = (out / f"controls-{day}.html").read_text()
    assert 'src="data:image/png;base64,' in page and "http" not in page.replace("http-equiv", "")
    assert set(re.findall(r'href="#(q\d+)"', page)) <= set(re.findall(r'id="(q\d+)"', page))
    assert (out / f"controls-{day}-utilisation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_reject_and_surveillance_code_has_its_place_in_the_report() -> None:
    placed = {x for c in cr.RTS6 + cr.SEC for x in c.codes} | set(cr.FAILED_CLOSED) | set(cr.NOT_A_CONTROL)
    due = {code for code, r in CATALOGUE.items() if r.raised_by != "alert" or code in cr.SURVEILLANCE}
    assert due - placed == set()
    assert placed - set(CATALOGUE) == set()  # and no code the catalogue does not know


def test_a_day_not_in_the_journal_is_a_clear_error(stack: Any, tmp_path: Path) -> None:
    stack.start_sim()
    stack.start_gateway()
    stack.stop_gateway()
    toml = write_config(stack.cfg, tmp_path / "gateway.toml")
    run = subprocess.run([sys.executable, "-m", "gateway.cli", "report", "controls", "--config", str(toml),
                          "--date", "20000101", "--out", str(tmp_path / "r")], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2 and "no trading day 20000101 in the journal" in run.stderr

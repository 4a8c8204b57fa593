"""What-if on a recorded day (the demo's, tests/golden/demo-day.events.log): the decisions that change under
other limits are exactly those a hand count of that day's requests gives."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.control import what_if

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def day(tmp_path: Path) -> Any:
    """A gateway configuration whose state folder holds the demo's recorded day, under the golden risk files."""
    from sim.demo import demo_configs
    from tests.gwtest import write_config

    cfg, _ = demo_configs(tmp_path)
    risk = cfg.risk.model_copy(update={k: GOLDEN / "risk" / f for k, f in (
        ("instruments", "instruments.csv"), ("accounts", "accounts.toml"), ("limits", "limits.toml"),
        ("scenarios", "scenarios.csv"))})
    cfg = cfg.model_copy(update={"risk": risk})
    cfg.state_dir.mkdir(parents=True)
    shutil.copy(GOLDEN / "demo-day.events.log", cfg.state_dir / "events.log")
    proposed = tmp_path / "proposed"
    proposed.mkdir()
    (proposed / "limits.toml").write_text((GOLDEN / "risk" / "limits.toml").read_text()
                                          .replace("qty_max = 10_000", "qty_max = 250"))
    return cfg, proposed, write_config(cfg, tmp_path / "gateway.toml")


def test_what_if_finds_exactly_the_hand_counted_changes(day: Any) -> None:
    cfg, proposed, _ = day
    r = what_if.run(cfg, what_if_day(cfg), proposed)
    # By hand, with qty_max 250 instead of 10,000 (K1, under the kill switch, and X1, ACCOUNT_NOT_PERMITTED, are
    # the gateway's or an operator's and left out):
    #   I1  ACC2 JPM buy 300        accepted        -> QTY_MAX
    #   I2  its replace to 400      accepted        -> UNKNOWN_ORDER (I1 no longer exists)
    #   W1  ACC1 JPM buy 4,500      warn (notional) -> QTY_MAX
    #   R4  ACC2 JPM buy 4,900      VAR_LIMIT       -> QTY_MAX (checked before VaR)
    #   R1  AAPL buy 20,000 stays QTY_MAX; A1 100, M1 200, OMS2's A1 50, T1 10 stay accepted.
    assert [(c["cl_ord_id"], c["before"], c["after"]) for c in r.changed] == [
        ("I1", "accept", "QTY_MAX"), ("I2", "accept", "UNKNOWN_ORDER"), ("W1", "warn", "QTY_MAX"),
        ("R4", "VAR_LIMIT", "QTY_MAX")]
    assert r.requests == 14 and r.fills == 3
    assert r.baseline_agrees == r.requests  # under the limits in force, the replay decides as the gateway did
    assert r.counts("account") == {"ACC2": 3, "ACC1": 1} and r.counts("symbol") == {"JPM": 4}
    assert r.limits_in_force != r.limits_proposed


def what_if_day(cfg: Any) -> str:
    from gateway.events.log import EventLog

    return next(iter(EventLog.read(cfg.state_dir / "events.log"))).day  # type: ignore[union-attr]


def test_the_command_prints_markdown_and_json_and_refuses_a_missing_day(day: Any) -> None:
    cfg, proposed, toml = day
    date = what_if_day(cfg)
    cmd = [sys.executable, "-m", "gateway.cli", "what-if", "--config", str(toml), "--date", date, "--limits",
           str(proposed)]
    md = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert md.returncode == 0, md.stderr
    assert "**4 decisions change.**" in md.stdout and "| accept -> QTY_MAX | 1 |" in md.stdout
    js = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, timeout=120)
    assert [c["cl_ord_id"] for c in json.loads(js.stdout)["changed"]] == ["I1", "I2", "W1", "R4"]
    missing = subprocess.run([*cmd[:-4], "--date", "20200101", "--limits", str(proposed)], capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 2 and "no event log of trading day 20200101" in missing.stderr

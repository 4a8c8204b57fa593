"""A broken configuration names the file, the field and the reason; `fixgw check-config` says so without starting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import load_config
from sim.demo import DEMO_DIR

GOOD = (DEMO_DIR / "gateway.toml").read_text()


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "gw.toml"
    p.write_text(text)
    return p


def test_the_embedded_default_is_valid() -> None:
    cfg = load_config(DEMO_DIR / "gateway.toml")
    assert [c.sender_comp_id for c in cfg.acceptor.clients] == ["OMS1", "OMS2"]
    assert cfg.state_dir.is_absolute()


@pytest.mark.parametrize("old,new,field,reason", [
    ("port = 19878", "port = 70000", "acceptor.port", "less than or equal to 65535"),
    ('sender_comp_id = "OMS1"', 'sender_comp_id = ""', "acceptor.clients[0].sender_comp_id", "at least 1 character"),
    ('accounts = ["ACC3"]', "accounts = []", "acceptor.clients[1].accounts", "at least 1 item"),
    ("heartbeat_s = 30\nallowed", "heartbeat_s = 30\nhartbeat = 1\nallowed", "acceptor.hartbeat", "unknown setting"),
    ('target_comp_id = "VENUE"', "target_comp_id = 5", "venue.target_comp_id", "valid string"),
    ("port = 19880", "port = 19878", "(top level)", "connect to itself"),
    ('sender_comp_id = "OMS2"', 'sender_comp_id = "OMS1"', "acceptor", "listed twice"),
])
def test_a_bad_field_is_named_with_its_reason(tmp_path: Path, old: str, new: str, field: str, reason: str) -> None:
    assert old in GOOD
    p = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.path == str(p)
    assert e.value.field == field
    assert reason in e.value.reason


def test_invalid_toml_names_the_file_and_the_syntax_error(tmp_path: Path) -> None:
    p = _write(tmp_path, GOOD + "\n[acceptor\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.field == "(syntax)" and "invalid TOML" in e.value.reason and str(p) in str(e.value)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "nope.toml")
    assert "cannot read" in e.value.reason


def test_a_missing_risk_file_is_reported(tmp_path: Path) -> None:
    p = _write(tmp_path, GOOD.replace('instruments = "../examples/instruments.csv"', 'instruments = "i.csv"'))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert e.value.field == "risk.instruments" and "file not found" in e.value.reason


def test_check_config_also_validates_the_risk_files(tmp_path: Path) -> None:
    limits = tmp_path / "limits.toml"
    limits.write_text((DEMO_DIR.parent / "examples" / "limits.toml").read_text().replace("qty_max = 10_000",
                                                                                         "qty_max = -5", 1))
    p = _write(tmp_path, GOOD.replace("../examples/instruments.csv", str(DEMO_DIR.parent / "examples" /
                                                                        "instruments.csv"))
               .replace("../examples/accounts.toml", str(DEMO_DIR.parent / "examples" / "accounts.toml"))
               .replace("../examples/scenarios.csv", str(DEMO_DIR.parent / "examples" / "scenarios.csv"))
               .replace("../examples/limits.toml", str(limits)))
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", str(p)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(limits) in r.stderr and "qty_max" in r.stderr


def test_check_config_command(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", str(DEMO_DIR / "gateway.toml")],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "OK" in ok.stdout
    bad = _write(tmp_path, GOOD.replace("port = 19878", "port = -1", 1))
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "check-config", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"{bad}: acceptor.port: Input should be greater than or equal to 1" in r.stderr

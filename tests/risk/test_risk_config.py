"""Loading risk reference data and limits: good files load, broken ones name file, field and why."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from config.errors import ConfigError
from config.risk_models import load_risk_config

EX = Path(__file__).resolve().parents[2] / "config" / "examples"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("instruments.csv", "accounts.toml", "limits.toml", "scenarios.csv"):
        shutil.copy(EX / name, tmp_path / name)
        out[name.split(".")[0]] = tmp_path / name
    return out


def load(f: dict[str, Path], scenarios: bool = True):
    return load_risk_config(f["instruments"], f["accounts"], f["limits"], f["scenarios"] if scenarios else None)


def broken(f: dict[str, Path], which: str, old: str, new: str) -> ConfigError:
    p = f[which]
    text = p.read_text()
    assert old in text, old
    p.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as ei:
        load(f)
    assert ei.value.path == str(p)
    return ei.value


def test_examples_load(files: dict[str, Path]) -> None:
    cfg = load(files)
    assert [a.name for a in cfg.accounts] == ["ACC1", "ACC2", "ACC3"]
    assert len(cfg.instruments) == 12 and cfg.sectors == ("TECH", "FIN", "ENERGY")
    assert cfg.restricted == {"GS"}
    assert cfg.scenarios is not None and cfg.scenarios.shape == (500, 12)
    g = cfg.limits.global_
    assert g.qty_max.limit == 10_000 and g.qty_max.warn == 0.8 and g.qty_max.warn_level == 8_000
    assert cfg.limits.instruments["NVDA"].collar_pct.warn == 0.5
    assert cfg.limits.accounts["ACC2"].var_max.warn == 0.9
    assert cfg.instruments[-1].reference_price is None
    assert len(cfg.limits_version) == 16


def test_limits_version_follows_the_content(files: dict[str, Path]) -> None:
    v1 = load(files).limits_version
    assert load(files).limits_version == v1
    files["limits"].write_text(files["limits"].read_text().replace("qty_max = 10_000", "qty_max = 9_000"))
    assert load(files).limits_version != v1


def test_npy_scenarios(files: dict[str, Path], tmp_path: Path) -> None:
    arr = np.loadtxt(files["scenarios"], delimiter=",", skiprows=1)
    np.save(tmp_path / "s.npy", arr)
    cfg = load_risk_config(files["instruments"], files["accounts"], files["limits"], tmp_path / "s.npy")
    assert np.array_equal(cfg.scenarios, load(files).scenarios)
    np.save(tmp_path / "bad.npy", arr[:, :5])
    with pytest.raises(ConfigError) as ei:
        load_risk_config(files["instruments"], files["accounts"], files["limits"], tmp_path / "bad.npy")
    assert ei.value.field == "shape"


@pytest.mark.parametrize("which,old,new,field,why", [
    ("instruments", "AAPL,TECH,1,0.01,190.00", "AAPL,TECH,1,-0.01,190.00", "row 1.tick_size", "greater than 0"),
    ("instruments", "MSFT,TECH,1,0.01,410.00", "MSFT,TECH,abc,0.01,410.00", "row 2.multiplier", "valid number"),
    ("instruments", "NVDA,TECH,1,0.01,120.00", "NVDA,TECH,1,0.01,nan", "row 3.reference_price", "finite"),
    ("instruments", "GOOG,TECH", "AAPL,TECH", "row 4.symbol", "duplicate"),
    ("instruments", "reference_price\n", "reference_price,colour\n", "colour", "unknown column"),
    ("accounts", "cash = 500_000.0", "cash = \"lots\"", "accounts.ACC2.cash", "valid number"),
    ("accounts", "\"NEWCO\"]", "\"NEWCO\", \"TSLA\"]", "accounts.ACC3.allowed_instruments", "TSLA"),
    ("accounts", "[accounts.ACC1]", "[accounts.ACC1\n", "<syntax>", ""),
    ("limits", "qty_max = 10_000", "qty_max = -5", "global.qty_max.limit", "greater than 0"),
    ("limits", "warn = 0.8", "warn = 1.5", "global.warn", "less than or equal to 1"),
    ("limits", "order_rate_max = 50 ", "order_rate_max = 2.5 ", "global.order_rate_max", "whole number"),
    ("limits", "[accounts.ACC3]", "[accounts.ACC7]", "accounts.ACC7", "unknown account"),
    ("limits", "[sectors.ENERGY]", "[sectors.MINING]", "sectors.MINING", "unknown sector"),
    ("limits", "[instruments.NVDA]", "[instruments.NVDX]", "instruments.NVDX", "unknown symbol"),
    ("limits", "leverage_max = 4.0", "leverage_maxx = 4.0", "global.leverage_maxx", "Extra inputs"),
    ("limits", "var_confidence = 0.99", "var_confidence = 1.5", "settings.var_confidence", "less than 1"),
    ("scenarios", "AAPL,MSFT", "AAPL,MSFTX", "MSFTX", "not a known symbol"),
])
def test_broken_files_name_file_field_and_reason(files, which, old, new, field, why) -> None:
    err = broken(files, which, old, new)
    assert err.field == field, err
    assert why in err.reason, err
    assert str(err).startswith(f"{files[which]}: {field}: ")


def test_var_limit_without_scenarios_is_an_error(files: dict[str, Path]) -> None:
    with pytest.raises(ConfigError) as ei:
        load(files, scenarios=False)
    assert ei.value.path == str(files["limits"]) and ei.value.field == "global.var_max"


def test_missing_file_and_missing_scenario_column(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_risk_config(tmp_path / "nope.csv", files["accounts"], files["limits"])
    assert ei.value.field == "<file>"
    lines = files["scenarios"].read_text().splitlines()
    files["scenarios"].write_text("\n".join(",".join(x.split(",")[:-1]) for x in lines) + "\n")
    with pytest.raises(ConfigError) as ei:
        load(files)
    assert (ei.value.field, ei.value.reason) == ("NEWCO", "no scenario column for this instrument")

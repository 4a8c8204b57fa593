"""Limit changes under four eyes: one person proposes a limits version, a different person approves it.

`fixgw limits propose DIR` stages the folder's limit files (limits.toml, and instruments.csv, accounts.toml,
scenarios.csv where present; the configured ones otherwise) under `<state_dir>/limits/<version>/`, with who
proposed it, when and why, and answers with the version's what-if on the current trading day. `fixgw limits
approve VERSION` by someone else puts it in force for the next order, atomically, exactly as a reload does, and
makes it the version a start loads (`<state_dir>/limits/current`). Both steps are journaled with who and why.
With `[gateway] limit_changes = "four_eyes"` the plain reload (`fixgw admin reload`, SIGHUP) is refused; with
"reload" (the default) both ways are open.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.risk_models import RiskConfig, load_risk_config
from config.settings import GatewayConfig
from gateway.events import schema

if TYPE_CHECKING:
    from gateway.service import Gateway

FILES = {"instruments": "instruments.csv", "accounts": "accounts.toml", "limits": "limits.toml",
         "scenarios": "scenarios.csv"}
RECORD = "proposal.json"


def root(cfg: GatewayConfig) -> Path:
    return cfg.state_dir / "limits"


def current_version(cfg: GatewayConfig) -> str | None:
    p = root(cfg) / "current"
    return p.read_text().strip() or None if p.exists() else None


def load_version(cfg: GatewayConfig, version: str) -> RiskConfig:
    """A staged version's limit files, with the configured locates and KYC file (daily data, not limits)."""
    d = root(cfg) / version
    r = cfg.risk
    if r is None or not (d / RECORD).exists():
        raise ValueError(f"no staged limits version {version!r} (see `fixgw limits history`)")
    scen = d / FILES["scenarios"]
    return load_risk_config(d / FILES["instruments"], d / FILES["accounts"], d / FILES["limits"],
                            scen if scen.exists() else None, r.locates, r.kyc)


def _record(cfg: GatewayConfig, version: str) -> dict[str, Any]:
    return json.loads((root(cfg) / version / RECORD).read_text())


def _write_record(cfg: GatewayConfig, version: str, rec: dict[str, Any]) -> None:
    p = root(cfg) / version / RECORD
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    os.replace(tmp, p)


def propose(gw: Gateway, folder: Path, who: str, why: str) -> dict[str, Any]:
    """Stage the folder's limits as a new version (validated first) and answer with its what-if on today."""
    from gateway.control import what_if

    cfg = gw.cfg
    if not who or not why:
        raise ValueError("who and why are required for every operator action")
    r = cfg.risk
    if r is None:
        raise ValueError("no [risk] section in the configuration: no limits to change")
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of limit files ({', '.join(FILES.values())})")
    sources = {k: (folder / n if (folder / n).is_file() else getattr(r, k)) for k, n in FILES.items()}
    if not (folder / FILES["limits"]).is_file():
        raise ValueError(f"{folder}: no {FILES['limits']} in it")
    new_cfg = load_risk_config(sources["instruments"], sources["accounts"], sources["limits"], sources["scenarios"],
                               r.locates, r.kyc)  # a broken file is refused here: ConfigError names it
    h = hashlib.sha256()
    for k in FILES:
        h.update(k.encode() + b"\0" + (sources[k].read_bytes() if sources[k] is not None else b"") + b"\0")
    version = h.hexdigest()[:12]
    d = root(cfg) / version
    if (d / RECORD).exists():
        rec = _record(cfg, version)
        raise ValueError(f"limits version {version} was already proposed by {rec['proposer']} ({rec['status']})")
    d.mkdir(parents=True, exist_ok=True)
    for k, src in sources.items():
        if src is not None:
            shutil.copyfile(src, d / FILES[k])
    from gateway.service import client_sessions

    in_force = gw.router.read(lambda ledger, risk: risk.engine.cfg if risk is not None else new_cfg)
    result = what_if.compare(gw.events.read_today(), gw.trading_day, in_force, new_cfg, client_sessions(cfg),
                             max(cfg.gateway.max_open_orders, 1))
    changes = {"decisions_changed": len(result.changed),
               "by_change": dict(result.counts("after")), "requests": result.requests}
    _write_record(cfg, version, {"version": version, "proposer": who, "why": why, "proposed_at": time.time(),
                                 "status": "proposed", "limits_version": new_cfg.limits_version,
                                 "what_if": changes})
    gw.events.append(schema.Admin(action="limits propose", scope=f"limits:{version}", who=who, why=why,
                                  detail={"limits_version": new_cfg.limits_version, **changes}, ts=time.time_ns()))
    return {"version": version, "limits_version": new_cfg.limits_version, "what_if": what_if.render(result, "md")}


def approve(gw: Gateway, version: str, who: str, why: str) -> dict[str, Any]:
    """A different person puts a proposed version in force (as a reload does) and makes it the one a start loads."""
    cfg = gw.cfg
    if not who:
        raise ValueError("who is required for an approval")
    if not (root(cfg) / version / RECORD).exists():
        raise ValueError(f"no staged limits version {version!r} (see `fixgw limits history`)")
    rec = _record(cfg, version)
    if rec["status"] != "proposed":
        raise ValueError(f"limits version {version} is {rec['status']}, not awaiting approval")
    if who == rec["proposer"]:
        raise ValueError(f"{who} proposed limits version {version}: a different person must approve it")
    new_cfg = load_version(cfg, version)
    old, new = gw.router.swap_limits(new_cfg, who, why or f"approved limits version {version}")
    rec.update(status="approved", approver=who, approved_at=time.time(), approve_why=why)
    _write_record(cfg, version, rec)
    previous = current_version(cfg)
    if previous and previous != version and (root(cfg) / previous / RECORD).exists():
        prev = _record(cfg, previous)
        prev["status"] = "superseded"
        _write_record(cfg, previous, prev)
    tmp = root(cfg) / "current.tmp"
    tmp.write_text(version)
    os.replace(tmp, root(cfg) / "current")
    gw.events.append(schema.Admin(action="limits approve", scope=f"limits:{version}", who=who, why=why,
                                  detail={"proposer": rec["proposer"], "approver": who, "from": old, "to": new},
                                  ts=time.time_ns()))
    return {"version": version, "proposer": rec["proposer"], "approver": who, "limits_version": new}


def history(cfg: GatewayConfig) -> list[dict[str, Any]]:
    """Every staged version, oldest first, with who proposed and approved it, when, and its limits.toml's diff
    against the version proposed before it (the configured file for the first)."""
    base = root(cfg)
    if not base.is_dir():
        return []
    recs = sorted((json.loads(p.read_text()) for p in base.glob(f"*/{RECORD}")), key=lambda r: r["proposed_at"])
    before = cfg.risk.limits.read_text().splitlines() if cfg.risk is not None else []
    out = []
    for rec in recs:
        text = (base / rec["version"] / FILES["limits"]).read_text().splitlines()
        rec["diff"] = "\n".join(difflib.unified_diff(before, text, "before", rec["version"], lineterm=""))
        out.append(rec)
        before = text
    return out

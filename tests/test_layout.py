"""Which package may import which: the layout shows the data path only while the imports follow it.

    config, risk                      pure: configuration models and the risk kernel (risk reads config only)
    gateway.fix                       FIX sessions; the only importer of quickfix in the daemon
    gateway.events                    the event log (schema, log) and its projections (journal, metrics)
    gateway.recon                     reconciliation: sans-IO core, store, and the feed that follows the event log
    gateway.orders                    the order path: fix, events and risk below it, nothing above
    gateway.service, gateway.control  the assembly and the control plane (they may use everything above)
    gateway.cli                       the command line: the only gateway module that may import sim (lazily)
    sim                               venue simulator, OMS client, demo: uses the gateway, never used by it
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway.fix", "gateway.orders", "gateway.events", "gateway.recon", "gateway.control")
THIRD_PARTY_GUARDED = ("quickfix", "simplefix")

ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "gateway": set(),
    "risk": {"config"},
    "gateway.fix": {"config", "quickfix"},
    "gateway.events": {"config", "risk"},
    "gateway.recon": {"config", "simplefix", "gateway.events"},
    "gateway.orders": {"config", "risk", "gateway.fix", "gateway.events"},
    "gateway.service": {"config", "risk", "gateway.fix", "gateway.events", "gateway.recon", "gateway.orders",
                        "gateway.control"},
    "gateway.control": {"config", "risk", "gateway.fix", "gateway.events", "gateway.recon", "gateway.orders",
                        "gateway.service"},
    "gateway.cli": {"config", "risk", "gateway.fix", "gateway.events", "gateway.recon", "gateway.orders",
                    "gateway.service", "gateway.control", "sim"},
    "sim": {"config", "gateway.fix", "gateway.events", "gateway.service", "gateway.control", "quickfix", "simplefix"},
}


def unit_of(module: str) -> str | None:
    """The layer a module belongs to, or None for the standard library and other third-party packages."""
    parts = module.split(".")
    if parts[0] == "gateway":
        if len(parts) > 1 and ".".join(parts[:2]) in PACKAGES:
            return ".".join(parts[:2])
        if len(parts) > 1 and parts[1] in ("service", "cli"):
            return f"gateway.{parts[1]}"
        return "gateway"
    if parts[0] in ("config", "risk", "sim", *THIRD_PARTY_GUARDED):
        return parts[0]
    return None


def imports(path: Path) -> list[tuple[int, str]]:
    """Every module an import statement in the file names (function-local imports included)."""
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "gateway":  # from gateway import fix: the name is the package
                out += [(node.lineno, f"gateway.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
    return out


def source_files() -> list[tuple[str, Path]]:
    files = []
    for top in ("config", "risk", "gateway", "sim"):
        for path in sorted((ROOT / top).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            files.append((module, path))
    return files


def violations() -> list[str]:
    out = []
    for module, path in source_files():
        src = unit_of(module)
        assert src in ALLOWED, f"{module}: in no layer of tests/test_layout.py (a new top-level gateway module?)"
        for line, target in imports(path):
            dst = unit_of(target)
            if dst is None or dst == src:
                continue
            if dst not in ALLOWED[src]:
                out.append(f"{path.relative_to(ROOT)}:{line}: {src} may not import {target}")
    return out


def test_every_import_follows_the_layers() -> None:
    assert violations() == []


def test_the_check_catches_a_wrong_way_import(tmp_path: Path, monkeypatch) -> None:
    # The rule itself, on a file that imports upwards: the order path reaching into the control plane.
    bad = tmp_path / "gateway" / "orders" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text("from gateway.control import daemon\nimport quickfix\n")
    for top in ("config", "risk", "sim"):
        (tmp_path / top).mkdir()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert violations() == ["gateway/orders/bad.py:1: gateway.orders may not import gateway.control",
                            "gateway/orders/bad.py:2: gateway.orders may not import quickfix"]


def test_the_daemon_loads_no_simulator_code() -> None:
    code = ("import sys, gateway.control.daemon, gateway.cli; "
            "print(sorted(m for m in sys.modules if m == 'sim' or m.startswith('sim.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_only_the_order_path_takes_its_lock_or_changes_its_ledger() -> None:
    # The router owns the ledger, the risk state and their lock; the control plane uses its methods
    # (read, operator_switch, swap_limits, mirror, roll_day, responsive) and never the lock or the ledger itself.
    pattern = re.compile(r"router\.lock|\br\.lock\b|\.ledger\s*=|\.ledger\.(add_|set_status|orders\[|open\[|fills\[|"
                         r"by_client\[|by_venue\[|rejected_ids\.add|exec_ids\.add|next_)")
    found = []
    for module, path in source_files():
        if module.startswith("gateway.orders") or not module.startswith("gateway"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []

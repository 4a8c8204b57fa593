"""The README's first command: the demo runs every scripted step on real sessions and exits 0."""

from __future__ import annotations

import subprocess
import sys


def test_demo_passes_every_step(tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "gateway.cli", "demo", "--state-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    summary = [line for line in r.stdout.splitlines() if line.endswith(" failed")]
    assert summary and summary[-1].endswith(" 0 failed")
    assert (tmp_path / "gateway" / "events.log").stat().st_size > 0
    # the kept day answers the command line through the configuration the demo leaves beside it
    day = next(line.split()[3].rstrip(":") for line in r.stdout.splitlines() if line.startswith("Controls report of "))
    q = subprocess.run([sys.executable, "-m", "gateway.cli", "journal", "--config", str(tmp_path / "gateway.toml"),
                        "--table", "alerts", "--date", day, "--format", "csv"], capture_output=True, text=True,
                       timeout=120)
    assert q.returncode == 0 and "WASH_TRADE,ACC2,CVX" in q.stdout, q.stderr
    assert (tmp_path / "gateway" / "reports" / f"controls-{day}.html").is_file()

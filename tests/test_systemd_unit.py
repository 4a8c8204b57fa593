"""systemd/: the unit verifies clean, keeps its hardening, and the shipped config and sysusers/tmpfiles work.

Tests that need systemd's tools skip when they are absent; in Debian they come with the `systemd` package.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "fixgw.service"
INSTALLED_EXEC = "/opt/fixgw/.venv/bin/fixgw"
MAX_EXPOSURE = 3.5  # systemd-analyze security's 0-10 scale; the unit scores 2.9 with systemd 252

NO_SYSTEMD = "systemd tools not installed (Debian package: systemd)"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found: {NO_SYSTEMD}")
    return path


def _directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) in file order; systemd allows a key to repeat, so no dict."""
    out: list[tuple[str, str, str]] = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def _values(key: str, section: str = "Service") -> list[str]:
    return [v for s, k, v in _directives(UNIT.read_text()) if s == section and k == key]


def _one(key: str, section: str = "Service") -> str:
    vals = _values(key, section)
    assert len(vals) == 1, f"{section}.{key} set {len(vals)} times"
    return vals[0]


def _runnable_copy(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists here: verify refuses a missing one."""
    exe = Path(sys.executable).parent / "fixgw"
    if not exe.is_file():
        exe = Path(sys.executable)
    text = UNIT.read_text()
    assert INSTALLED_EXEC in text
    copy = tmp_path / "fixgw.service"
    copy.write_text(text.replace(INSTALLED_EXEC, str(exe)))
    return copy


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": "", "LC_ALL": "C"})


# ---------------------------------------------------------------------- systemd-analyze
def test_unit_verifies_clean(tmp_path: Path) -> None:
    tool = _tool("systemd-analyze")
    copy = _runnable_copy(tmp_path)
    r = _run([tool, "verify", "--man=no", str(copy)], tmp_path)
    # verify exits 0 even for unknown keys or unparsable values (it only warns): any output is a finding.
    output = (r.stdout + r.stderr).strip()
    assert r.returncode == 0 and output == "", f"systemd-analyze verify (rc={r.returncode}):\n{output}"


def test_unit_exposure_stays_low(tmp_path: Path) -> None:
    tool = _tool("systemd-analyze")
    copy = _runnable_copy(tmp_path)
    r = _run([tool, "security", "--offline=yes", "--no-pager", str(copy)], tmp_path)
    if r.returncode != 0 and "offline" in r.stderr.lower():
        pytest.skip(f"systemd-analyze security --offline unsupported (systemd < 250): {r.stderr.strip()}")
    m = re.search(r"Overall exposure level for fixgw\.service: (\d+(?:\.\d+)?)", r.stdout)
    assert m, f"unexpected systemd-analyze security output:\n{r.stdout}\n{r.stderr}"
    assert float(m.group(1)) <= MAX_EXPOSURE, f"hardening regressed:\n{r.stdout}"


# ---------------------------------------------------------------------- what the unit must keep saying
def test_unit_is_notify_with_watchdog_and_restart() -> None:
    assert _one("Type") == "notify"
    assert _one("NotifyAccess") == "main"
    assert _one("ExecStart") == f"{INSTALLED_EXEC} run --config /etc/fixgw/gateway.toml"
    assert _one("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert _one("WatchdogSec") == "10s"
    assert _one("Restart") == "on-failure"
    assert _one("RestartSec") == "2s"
    assert _one("TimeoutStartSec") == "60s"
    assert _one("TimeoutStopSec") == "30s"
    assert _one("KillMode") == "mixed"
    assert (_one("User"), _one("Group")) == ("fixgw", "fixgw")


def test_unit_directories_and_admin_socket_privacy() -> None:
    for kind in ("State", "Logs", "Runtime", "Configuration", "Cache"):
        assert _one(f"{kind}Directory") == "fixgw"
    assert _one("RuntimeDirectoryMode") == "0700"  # /run/fixgw/admin.sock: owner only
    assert _one("UMask") == "0027"
    assert _one("Environment") == "NUMBA_CACHE_DIR=/var/cache/fixgw/numba"


def test_unit_hardening() -> None:
    expected = {
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
        "NoNewPrivileges": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "ProtectClock": "yes",
        "ProtectHostname": "yes", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes", "SystemCallArchitectures": "native", "CapabilityBoundingSet": "",
    }
    for key, value in expected.items():
        assert _one(key) == value, key


def test_unit_never_denies_wx_memory() -> None:
    # numba's LLVM JIT needs writable-then-executable pages: MemoryDenyWriteExecute=yes kills the gateway.
    assert _values("MemoryDenyWriteExecute") == []


def test_unit_ip_filter_is_an_allow_list() -> None:
    assert _values("IPAddressDeny") == ["any"]
    allowed = " ".join(_values("IPAddressAllow")).split()
    assert "localhost" in allowed
    assert len(allowed) >= 3, "OMS client networks and the venue must be listed next to localhost"


# ---------------------------------------------------------------------- sysusers / tmpfiles
def test_sysusers_creates_the_system_user(tmp_path: Path) -> None:
    tool = _tool("systemd-sysusers")
    (tmp_path / "etc").mkdir()
    r = subprocess.run([tool, f"--root={tmp_path}", "-"], input=(SYSTEMD / "fixgw.sysusers.conf").read_text(),
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and os.geteuid() != 0:
        pytest.skip(f"systemd-sysusers --root needs root here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    passwd = (tmp_path / "etc" / "passwd").read_text()
    m = re.search(r"^fixgw:x:(\d+):(\d+):[^:]*:/var/lib/fixgw:/usr/sbin/nologin$", passwd, re.M)
    assert m, passwd
    assert int(m.group(1)) < 1000, "a system user, not a login user"
    assert re.search(r"^fixgw:x:\d+:", (tmp_path / "etc" / "group").read_text(), re.M)


def test_tmpfiles_makes_config_dir_readable_by_the_service_only(tmp_path: Path) -> None:
    sysusers = _tool("systemd-sysusers")
    tmpfiles = _tool("systemd-tmpfiles")
    if os.geteuid() != 0:
        pytest.skip("systemd-tmpfiles must chown to the fixgw group: needs root")
    (tmp_path / "etc").mkdir()
    subprocess.run([sysusers, f"--root={tmp_path}", "-"], input=(SYSTEMD / "fixgw.sysusers.conf").read_text(),
                   check=True, capture_output=True, text=True, timeout=60)
    r = subprocess.run([tmpfiles, f"--root={tmp_path}", "--create", "-"],
                       input=(SYSTEMD / "fixgw.tmpfiles.conf").read_text(), capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    st = (tmp_path / "etc" / "fixgw").stat()
    gid = int(re.search(r"^fixgw:x:(\d+):", (tmp_path / "etc" / "group").read_text(), re.M).group(1))  # type: ignore[union-attr]
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, gid, 0o750)


# ---------------------------------------------------------------------- the example configuration
def _check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    rc = main(["check-config", str(path)])
    out = capsys.readouterr()
    assert rc == 0, out.err


def test_example_config_is_production_shaped() -> None:
    cfg = tomllib.loads((SYSTEMD / "gateway.example.toml").read_text())
    assert cfg["gateway"]["state_dir"] == "/var/lib/fixgw"
    assert cfg["metrics"]["host"] == "127.0.0.1" and cfg["metrics"]["port"] > 0
    assert all(str(p).startswith("/etc/fixgw/") for p in cfg["risk"].values())
    # Every address the gateway talks to must be one the unit's IP filter lets through.
    nets = [ipaddress.ip_network("127.0.0.0/8" if a == "localhost" else a, strict=False)
            for a in " ".join(_values("IPAddressAllow")).split()]
    for host in (cfg["venue"]["host"], cfg["dropcopy"]["host"], *cfg["acceptor"]["allowed_remote_addresses"],
                 cfg["metrics"]["host"]):
        assert any(ipaddress.ip_address(host) in n for n in nets), f"{host} is not in the unit's IPAddressAllow="


def test_example_config_passes_check_config_without_risk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (SYSTEMD / "gateway.example.toml").read_text()
    without_risk = re.sub(r"(?ms)^\[risk\]\n.*?(?=^\[)", "", text)
    assert "[risk]" not in without_risk and "[metrics]" in without_risk
    path = tmp_path / "gateway.toml"
    path.write_text(without_risk)
    _check_config(path, capsys)


def test_example_config_passes_check_config_with_example_risk_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = ROOT / "config" / "examples"
    names = ("instruments.csv", "accounts.toml", "limits.toml", "scenarios.csv")
    if not all((examples / n).is_file() for n in names):
        pytest.skip("config/examples/ risk files not present")
    path = tmp_path / "gateway.toml"
    path.write_text((SYSTEMD / "gateway.example.toml").read_text().replace("/etc/fixgw/", f"{examples}/"))
    _check_config(path, capsys)

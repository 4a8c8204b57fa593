"""Shared plumbing of the order-path benchmark: paths, server processes, /proc sampling, TOML writing.

Every server the benchmark starts is a subprocess of its own (the machine has 2 cores and the GIL would make
in-process measurements meaningless); `Proc.stop` sends SIGTERM, then SIGKILL after a timeout, and `Procs`
stops everything it started even when a run fails half-way.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CONFIGS = BENCH / "configs"
RESULTS = BENCH / "results"
PYTHON = Path(sys.executable)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------------------------ /proc
def proc_cpu_s(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def proc_mem_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0])
    return out


def sample(pid: int) -> dict[str, float]:
    """CPU seconds and memory of a process now; empty when it is gone."""
    try:
        mem = proc_mem_kb(pid)
        return {"cpu_s": proc_cpu_s(pid), "rss_kb": mem.get("VmRSS", 0), "hwm_kb": mem.get("VmHWM", 0),
                "t": time.monotonic()}
    except (OSError, ValueError):
        return {}


def system_busy_s() -> float:
    """CPU seconds all processes on the machine have used since boot (every state but idle and iowait)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts]
    return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK  # user nice system [idle iowait] irq softirq steal


def background_cores(pids: list[int], seconds: float = 2.0) -> float:
    """Cores busy over `seconds` with work of processes other than `pids` (other people's tests, say)."""
    import time as _t
    b0 = system_busy_s()
    p0 = sum(sample(p).get("cpu_s", 0.0) for p in pids)
    _t.sleep(seconds)
    b1 = system_busy_s()
    p1 = sum(sample(p).get("cpu_s", 0.0) for p in pids)
    return max(0.0, (b1 - b0) - (p1 - p0)) / seconds


def machine_info() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    import platform

    try:
        import quickfix  # noqa: F401
        from importlib.metadata import version
        qf = version("quickfix")
    except Exception:  # pragma: no cover - only informative
        qf = "?"
    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_gb": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version(), "quickfix": qf,
            "hostname": platform.node()}


def git_commit() -> dict[str, str]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                                  timeout=10).stdout.rstrip("\n")
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = git("status", "--porcelain", "--", "gateway", "risk", "config")
    out = {"commit": git("rev-parse", "--short", "HEAD"), "subject": git("log", "-1", "--format=%s"),
           "order_path_dirty": "yes" if dirty else "no"}
    if dirty:  # measured a working tree with uncommitted changes: say which files, and a hash of them
        import hashlib
        h = hashlib.sha256(git("diff", "HEAD", "--", "gateway", "risk", "config").encode())
        for line in dirty.splitlines():
            path = ROOT / line[3:].strip()
            if line.startswith("??") and path.is_file():
                h.update(path.read_bytes())
        out["worktree_sha"] = h.hexdigest()[:12]
        out["worktree_changes"] = " ".join(line[3:].strip() for line in dirty.splitlines())
    return out


# ------------------------------------------------------------------------------------------------ processes
@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    started_at: float = 0.0  # time.time() just before the process was started
    stopped_by_us: bool = False  # stop() was called: its exit is not a failure

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 20) -> str:
        out = []
        for p in (self.stdout, self.stderr):
            try:
                out += p.read_text(errors="replace").splitlines()[-n:]
            except OSError:
                pass
        return "\n".join(out)

    def wait_for_text(self, needle: str, timeout: float, stream: str = "stderr") -> None:
        path = self.stderr if stream == "stderr" else self.stdout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if needle in path.read_text(errors="replace"):
                    return
            except OSError:
                pass
            if not self.alive():
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}) before '{needle}':\n{self.tail()}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: no '{needle}' within {timeout:.0f}s:\n{self.tail()}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit status."""
        self.stopped_by_us = True
        if self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
            except ProcessLookupError:
                pass
        return self.popen.returncode


@dataclass
class Procs:
    """Every process one arrangement started; stopped in reverse order of start, always."""

    folder: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Proc:
        self.folder.mkdir(parents=True, exist_ok=True)
        out, err = self.folder / f"{name}.out", self.folder / f"{name}.err"
        full_env = dict(os.environ)
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        if env:
            full_env.update(env)
        with open(out, "wb") as fo, open(err, "wb") as fe:
            started_at = time.time()
            p = subprocess.Popen(argv, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=full_env,
                                 cwd=str(cwd or ROOT))
        proc = Proc(name, p, out, err, started_at)
        self.started.append(proc)
        return proc

    def stop_all(self, timeout: float = 10.0) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for p in reversed(self.started):
            codes[p.name] = p.stop(timeout)
        return codes


def install_stop_handlers(cleanup: Callable[[], None]) -> None:
    """SIGTERM/SIGINT/SIGHUP on the runner: stop the servers, then exit."""
    def handler(signum: int, _frame: object) -> None:
        cleanup()
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)

"""Scratch copies of the gateway with one suggested change each, to measure a change before proposing it.

    python bench/experiments.py [VARIANT ...]          # makes /tmp/fixgw-exp/<variant>/ (default: all)
    bench/run --arrangements gateway --venue fast --gateway-src /tmp/fixgw-exp/nojournal --tag x-nojournal
    python bench/compare.py bench/results/*-x-*.json

The copies live outside the repository and are never committed: the benchmark owns no gateway code. Each patch
is a literal text substitution against the gateway as measured (see docs/performance-order-path.md for the
commit); it fails loudly when the code has moved, rather than measuring something else.
QuickFIX message logging needs no copy: `--gateway-override gateway.fix_message_log=false`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
OUT = Path("/tmp/fixgw-exp")


def _sub(path: Path, old: str, new: str) -> None:
    s = path.read_text()
    if old not in s:
        raise SystemExit(f"{path}: the code this experiment patches has changed:\n{old}")
    path.write_text(s.replace(old, new, 1))


def nojournal(d: Path) -> None:
    """The SQLite audit journal off the event log (what its thread and its tap cost)."""
    _sub(d / "gateway/service.py", "        self.journal.follow(self.events)\n", "")


def noprojections(d: Path) -> None:
    """Journal, metrics and reconciliation all off the event log; run it with `--gateway-override
    dropcopy.enabled=false` so no drop copy is reconciled either. What the order path would cost if every
    projection ran in another process (the bound a projector process could reach; it does not count what that
    process would take from a 2-core machine)."""
    _sub(d / "gateway/service.py", "self.events.subscribers += [self.metrics.on_event, self.recon_feed.on_event]",
         "self.events.subscribers += []")
    _sub(d / "gateway/service.py", "        self.journal.follow(self.events)\n", "")


def norecon(d: Path) -> None:
    """The reconciliation takes neither side's fills (the drop-copy session still runs and is parsed): what the
    matcher and its SQLite store cost the gateway's process."""
    _sub(d / "gateway/service.py", ", self.recon_feed.on_event]", "]")
    _sub(d / "gateway/service.py", "        self.recon_feed.on_dropcopy(f)", "        pass")


def nogauge(d: Path) -> None:
    """No O(open orders) scan of the ledger for the open-orders gauge every housekeeping tick."""
    _sub(d / "gateway/service.py", "m.open_orders.set(len(self.router.ledger.open_orders()))", "pass")


def nogc(d: Path) -> None:
    """gc.freeze() after start-up and rare young collections."""
    _sub(d / "gateway/control/daemon.py", "    gw.start()\n",
         "    gw.start()\n    import gc; gc.freeze(); gc.set_threshold(200_000, 50, 1000)\n")


def venuenopersist(d: Path) -> None:
    """PersistMessages=N on the venue session (orders are never resent there: toApp gap-fills resends)."""
    _sub(d / "gateway/service.py", 'state / "quickfix" / "venue.cfg", vtext, log_dir)',
         'state / "quickfix" / "venue.cfg", vtext.replace("PersistMessages=Y", "PersistMessages=N"), log_dir)')


def switch(d: Path) -> None:
    """sys.setswitchinterval(200 us): a thread waiting for the GIL (e.g. in toApp under sendToTarget) gets it
    after at most 0.2 ms instead of 5 ms."""
    _sub(d / "gateway/control/daemon.py", "    gw.start()\n", "    gw.start()\n    import sys; sys.setswitchinterval(0.0002)\n")


def tracemem(d: Path) -> None:
    """tracemalloc on; the top allocation sites written to <state_dir>/tracemalloc.txt at stop (slow)."""
    _sub(d / "gateway/control/daemon.py", "    gw.start()\n", "    gw.start()\n    import tracemalloc; tracemalloc.start(1)\n")
    _sub(d / "gateway/control/daemon.py", "        await asyncio.to_thread(gw.stop)\n",
         "        import tracemalloc\n        snap = tracemalloc.take_snapshot()\n"
         "        (gw.cfg.state_dir / 'tracemalloc.txt').write_text("
         "'\\n'.join(str(s) for s in snap.statistics('lineno')[:40]))\n"
         "        await asyncio.to_thread(gw.stop)\n")


_CALLBACK_CPU = '''
import atexit as _atexit, collections as _collections, os as _os, time as _time
CPU = _collections.defaultdict(lambda: [0, 0])  # callback -> [calls, thread CPU ns]


def _cpu_dump() -> None:
    with open(f"/tmp/fixgw-callback-cpu-{_os.getpid()}.txt", "w") as f:
        for k, (n, ns) in sorted(CPU.items()):
            f.write(f"{k} calls={n} us_each={ns / 1000 / max(n, 1):.1f}\\n")


_atexit.register(_cpu_dump)


def _threads_cpu() -> dict[str, float]:
    import threading
    names = {t.native_id: t.name for t in threading.enumerate()}
    out = {}
    for tid in _os.listdir("/proc/self/task"):
        try:
            f = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # a QuickFIX thread that never called into Python has no name: the drop copy's, in practice
        out[names.get(int(tid), "native-" + tid)] = (int(f[11]) + int(f[12])) / _os.sysconf("SC_CLK_TCK")
    return out


def _threads_window() -> None:
    a = _threads_cpu(); t0 = _time.monotonic()
    _time.sleep(float(_os.environ.get("FIXGW_THREADS_WINDOW_S", "8")))
    b = _threads_cpu(); dt = _time.monotonic() - t0
    with open(f"/tmp/fixgw-thread-cpu-{_os.getpid()}.txt", "w") as f:
        for k in sorted(b, key=lambda k: a.get(k, 0) - b[k]):
            f.write(f"{k} cores={(b[k] - a.get(k, 0)) / dt:.3f}\\n")


def _threads_later() -> None:
    _time.sleep(float(_os.environ.get("FIXGW_THREADS_AFTER_S", "14")))
    _threads_window()


import threading as _threading
_threading.Thread(target=_threads_later, name="thread-cpu", daemon=True).start()
'''


def callbackcpu(d: Path) -> None:
    """Thread CPU time (not wall time: waiting for the GIL is not counted) of each QuickFIX callback into the
    gateway and of each sendToTarget (which runs the venue's toApp inside it), written at a clean stop to
    /tmp/fixgw-callback-cpu-<pid>.txt: how much of an order's cost is the gateway's Python. And each thread's
    share of the CPU over a window (FIXGW_THREADS_WINDOW_S, default 8 s, starting FIXGW_THREADS_AFTER_S, default
    14 s, after the start), in /tmp/fixgw-thread-cpu-<pid>.txt."""
    app = d / "gateway/fix/application.py"
    _sub(app, 'log = logging.getLogger("fixgw.fix")\n', 'log = logging.getLogger("fixgw.fix")\n' + _CALLBACK_CPU)
    _sub(app, "        try:\n            self._on_message(msg, sid)\n",
         "        t0 = _time.thread_time_ns()\n        try:\n            self._on_message(msg, sid)\n"
         "            c = CPU[self.name + '.fromApp']; c[0] += 1; c[1] += _time.thread_time_ns() - t0\n")
    _sub(app, "        try:\n            self._on_to_app(msg, sid)\n",
         "        t0 = _time.thread_time_ns()\n        try:\n            self._on_to_app(msg, sid)\n"
         "            c = CPU[self.name + '.toApp']; c[0] += 1; c[1] += _time.thread_time_ns() - t0\n")
    _sub(d / "gateway/fix/sessions.py", "    try:\n        return bool(fix.Session.sendToTarget(msg, sid))\n",
         "    import time\n    from gateway.fix.application import CPU\n    t0 = time.thread_time_ns()\n"
         "    try:\n        sent = bool(fix.Session.sendToTarget(msg, sid))\n"
         "        c = CPU['sendToTarget']; c[0] += 1; c[1] += time.thread_time_ns() - t0\n        return sent\n")


VARIANTS: dict[str, list[Callable[[Path], None]]] = {
    "base": [], "nojournal": [nojournal], "noprojections": [noprojections], "norecon": [norecon], "nogauge": [nogauge], "nogc": [nogc], "venuenopersist": [venuenopersist],
    "switch": [switch], "all": [nojournal, nogauge, nogc, venuenopersist, switch], "tracemem": [tracemem],
    "callbackcpu": [callbackcpu]}


def make(name: str) -> Path:
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    for sub in ("gateway", "risk", "config", "fix_specs"):
        shutil.copytree(ROOT / sub, d / sub, ignore=shutil.ignore_patterns("__pycache__"))
    for fn in VARIANTS[name]:
        fn(d)
    return d


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(VARIANTS)
    for n in names:
        if n not in VARIANTS:
            raise SystemExit(f"unknown variant {n}; known: {', '.join(VARIANTS)}")
        print(make(n))
    return 0


if __name__ == "__main__":
    sys.exit(main())

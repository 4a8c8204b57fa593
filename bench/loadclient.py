"""The benchmark's load client: FIX 4.4 over a raw, non-blocking TCP socket, in a process of its own.

One thread does everything (no GIL hand-offs inside the client): it sends NewOrderSingles at a fixed rate,
sleeping in `select()` until the next slot (woken early only to read acknowledgements, never busy-waiting), or
in bursts as fast as the socket takes them, and times each order from the moment it is handed to the kernel to
the moment the first ExecutionReport with ExecType=0 (150=0) for its ClOrdID is read off the socket.

Session messages (Logon, Heartbeat, Logout) are built with simplefix; NewOrderSingles are formatted by hand on
the hot path (about 10x cheaper than building a simplefix.FixMessage per order; `nos_bytes` is checked
byte for byte against simplefix in tests/test_bench_smoke.py). Incoming frames are cut on BodyLength(9) and
only the few tags the client needs are looked up.

The servers never reset sequence numbers, so every run uses fresh server state and this client starts at
MsgSeqNum 1 without ResetSeqNumFlag.

Usage (the runner calls it; standalone for a quick check):
    python bench/loadclient.py --port 5001 --target FIXGW \
        --plan '[{"name":"r1000","kind":"rate","rate":1000,"duration":3}]' --out /tmp/r.json
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from array import array
from pathlib import Path
from typing import Any

import simplefix

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import sample, system_busy_s  # noqa: E402

SOH = b"\x01"


def utc_stamp(t: float) -> str:
    s = int(t)
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(s)) + f".{int((t - s) * 1000):03d}"


class Stamper:
    """SendingTime/TransactTime strings; the strftime part is cached per second."""

    def __init__(self) -> None:
        self._sec = -1
        self._prefix = ""

    def __call__(self) -> str:
        t = time.time()
        s = int(t)
        if s != self._sec:
            self._sec, self._prefix = s, time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(s))
        return f"{self._prefix}.{int((t - s) * 1000):03d}"


def frame(body: bytes) -> bytes:
    """8=, 9= in front and 10= behind `body` (which starts at 35=)."""
    head = b"8=FIX.4.4\x019=" + str(len(body)).encode() + SOH
    msg = head + body
    return msg + b"10=" + f"{sum(msg) & 0xFF:03d}".encode() + SOH


def nos_bytes(sender: str, target: str, seq: int, stamp: str, cl: str, account: str, symbol: str, side: str,
              qty: str, price: str) -> bytes:
    """A FIX 4.4 NewOrderSingle (limit, day), header then body in the order simplefix would write them."""
    body = (f"35=D\x0149={sender}\x0156={target}\x0134={seq}\x0152={stamp}\x01"
            f"11={cl}\x011={account}\x0155={symbol}\x0154={side}\x0160={stamp}\x01"
            f"38={qty}\x0140=2\x0144={price}\x0159=0\x01").encode()
    return frame(body)


def nos_simplefix(sender: str, target: str, seq: int, stamp: str, cl: str, account: str, symbol: str, side: str,
                  qty: str, price: str) -> bytes:
    """The same message built with simplefix (reference for the hand-formatted one)."""
    m = simplefix.FixMessage()
    for tag, val in ((8, "FIX.4.4"), (35, "D"), (49, sender), (56, target), (34, seq), (52, stamp)):
        m.append_pair(tag, val, header=True)
    for tag, val in ((11, cl), (1, account), (55, symbol), (54, side), (60, stamp), (38, qty), (40, "2"),
                     (44, price), (59, "0")):
        m.append_pair(tag, val)
    return bytes(m.encode())


def get(msg: bytes, key: bytes) -> bytes | None:
    """Value of a tag; `key` is b"\\x01TAG=" (the leading SOH makes the match exact)."""
    i = msg.find(key)
    if i < 0:
        return None
    i += len(key)
    return msg[i:msg.find(SOH, i)]


K_MSGTYPE, K_CLORD, K_EXECTYPE, K_TEXT, K_TESTREQ = b"\x0135=", b"\x0111=", b"\x01150=", b"\x0158=", b"\x01112="
K_SEQ, K_ORDSTATUS = b"\x0134=", b"\x0139="


def pct(sorted_ns: list[int], p: float) -> float:
    """Nearest-rank percentile, in microseconds."""
    if not sorted_ns:
        return float("nan")
    k = max(0, min(len(sorted_ns) - 1, -(-int(p * len(sorted_ns) * 1000) // 100_000) - 1))
    return sorted_ns[k] / 1000.0


def lat_summary(lat: array) -> dict[str, float]:
    s = sorted(lat)
    if not s:
        return {}
    return {"n": len(s), "min": s[0] / 1000, "p50": pct(s, 50), "p90": pct(s, 90), "p99": pct(s, 99),
            "p99.9": pct(s, 99.9), "max": s[-1] / 1000, "mean": sum(s) / len(s) / 1000}


class Client:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.sender, self.target = a.sender, a.target
        self.seq = 1
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.sock: socket.socket | None = None
        self.logged_on = False
        self.logged_out = False
        self.logout_sent = False
        self.stamp = Stamper()
        self.pending: dict[str, tuple[int, int]] = {}  # ClOrdID -> (phase index, send ns)
        self.lat: list[array] = []  # per phase, ns
        self.acked: list[int] = []
        self.filled: list[int] = []  # per phase: orders reported fully filled (150=F/2 with 39=2)
        self.rejects: list[int] = []
        self.last_ack_ns: list[int] = []
        self.late = 0
        self.counts = {"session_rejects": 0, "business_rejects": 0, "cancel_rejects": 0, "resend_requests": 0,
                       "test_requests": 0, "other_exec_reports": 0}
        self.texts: list[str] = []
        self.last_sent = time.monotonic()
        self.watch: dict[str, int] = {}
        for w in a.watch or []:
            name, _, pid = w.partition("=")
            self.watch[name] = int(pid)

    # ------------------------------------------------------------------------------------ socket
    def connect(self) -> None:
        deadline = time.monotonic() + self.a.connect_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                s = socket.create_connection((self.a.host, self.a.port), timeout=2)
                break
            except OSError as e:
                last = e
                time.sleep(0.1)
        else:
            raise ConnectionError(f"cannot connect to {self.a.host}:{self.a.port}: {last}")
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A bounded kernel send buffer: what the server cannot take yet waits in our own buffer, not in
        # megabytes of loopback queue (which, against a slow reader, ends in dropped segments and
        # retransmission back-off stalls of tens of seconds).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.a.sndbuf)
        s.setblocking(False)
        self.sock = s

    def send_raw(self, data: bytes) -> None:
        assert self.sock is not None
        self.last_sent = time.monotonic()
        if self.outbuf:
            self.outbuf += data
            return
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            self.outbuf += data[n:]

    def send_admin(self, msg_type: str, fields: tuple[tuple[int, Any], ...] = ()) -> None:
        m = simplefix.FixMessage()
        for tag, val in ((8, "FIX.4.4"), (35, msg_type), (49, self.sender), (56, self.target), (34, self.seq),
                         (52, self.stamp())):
            m.append_pair(tag, val, header=True)
        for tag, val in fields:
            m.append_pair(tag, val)
        self.seq += 1
        self.send_raw(bytes(m.encode()))

    def pump(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the socket; read and handle everything that arrived."""
        sock = self.sock
        assert sock is not None
        r, w, _ = select.select([sock], [sock] if self.outbuf else [], [], max(timeout, 0.0))
        if w:
            try:
                n = sock.send(self.outbuf)
                del self.outbuf[:n]
            except BlockingIOError:
                pass
        if r:
            self._read()

    def _read(self) -> None:
        sock = self.sock
        assert sock is not None
        got = False
        while True:
            try:
                data = sock.recv(1 << 18)
            except BlockingIOError:
                break
            except ConnectionError:
                self.logged_out = True
                break
            if not data:
                self.logged_out = True
                break
            self.inbuf += data
            got = True
            if len(data) < (1 << 18):
                break
        if got:
            self._frames(time.monotonic_ns())

    def _frames(self, now: int) -> None:
        buf = self.inbuf
        pos = 0
        while True:
            i = buf.find(b"\x019=", pos)
            if i < 0:
                break
            j = buf.find(SOH, i + 3)
            if j < 0:
                break
            end = j + 1 + int(buf[i + 3:j]) + 7  # body, then "10=NNN\x01"
            if end > len(buf):
                break
            self._handle(bytes(buf[pos:end]), now)
            pos = end
        if pos:
            del buf[:pos]

    # ------------------------------------------------------------------------------------ messages
    def _handle(self, msg: bytes, now: int) -> None:
        t = get(msg, K_MSGTYPE)
        if t == b"8":
            et = get(msg, K_EXECTYPE)
            if et == b"0" or et == b"8":
                cl = get(msg, K_CLORD)
                rec = self.pending.pop(cl.decode() if cl else "", None)
                if rec is None:
                    self.late += 1
                    return
                ph, sent = rec
                if et == b"0":
                    self.lat[ph].append(now - sent)
                    self.acked[ph] += 1
                    self.last_ack_ns[ph] = now
                else:
                    self.rejects[ph] += 1
                    self._text(msg)
            else:
                self.counts["other_exec_reports"] += 1
                if (et == b"F" or et == b"2") and get(msg, K_ORDSTATUS) == b"2":
                    cl = get(msg, K_CLORD) or b""
                    ph_text, sep, _ = cl.partition(b"-")  # ClOrdIDs are "<phase>-<n>"
                    if sep and ph_text.isdigit() and int(ph_text) < len(self.filled):
                        self.filled[int(ph_text)] += 1
        elif t == b"0" or t == b"4":
            pass
        elif t == b"1":
            self.counts["test_requests"] += 1
            tid = get(msg, K_TESTREQ) or b""
            self.send_admin("0", ((112, tid.decode()),))
        elif t == b"A":
            self.logged_on = True
        elif t == b"5":
            if not self.logged_out and not self.logout_sent:  # the server's Logout: confirm it, as FIX asks
                self.send_admin("5")
                self.logout_sent = True
            self.logged_out = True
            self._text(msg)
        elif t == b"2":
            self.counts["resend_requests"] += 1
        elif t == b"3":
            self.counts["session_rejects"] += 1
            self._text(msg)
        elif t == b"j":
            self.counts["business_rejects"] += 1
            self._text(msg)
        elif t == b"9":
            self.counts["cancel_rejects"] += 1

    def _text(self, msg: bytes) -> None:
        if len(self.texts) < 20:
            self.texts.append(msg.replace(SOH, b"|").decode(errors="replace"))

    def logon(self) -> None:
        self.send_admin("A", ((98, 0), (108, self.a.heartbeat)))
        deadline = time.monotonic() + self.a.connect_timeout
        while not self.logged_on and not self.logged_out and time.monotonic() < deadline:
            self.pump(0.05)
        if not self.logged_on:
            raise ConnectionError(f"no Logon answer from {self.target}: {self.texts[-3:]}")

    def logout(self) -> None:
        if self.logged_out or self.sock is None:
            return
        self.send_admin("5")
        self.logout_sent = True
        deadline = time.monotonic() + 3
        while not self.logged_out and time.monotonic() < deadline:
            self.pump(0.05)

    def heartbeat_if_idle(self) -> None:
        if time.monotonic() - self.last_sent > self.a.heartbeat * 0.8:
            self.send_admin("0")

    # ------------------------------------------------------------------------------------ phases
    def send_order(self, ph: int, n: int) -> int:
        cl = f"{ph}-{n}"
        st = self.stamp()
        data = nos_bytes(self.sender, self.target, self.seq, st, cl, self.a.account, self.a.symbol,
                         "1" if n % 2 == 0 else "2", self.a.qty, self.a.price)
        self.seq += 1
        t = time.monotonic_ns()
        self.pending[cl] = (ph, t)
        self.send_raw(data)
        return t

    def run_phase(self, ph: int, spec: dict[str, Any]) -> dict[str, Any]:
        self.lat.append(array("q"))
        self.acked.append(0)
        self.filled.append(0)
        self.rejects.append(0)
        self.last_ack_ns.append(0)
        if spec.get("gate"):
            self.wait_for_gate(Path(spec["gate"]), float(spec.get("gate_timeout_s", 3600)))
        kind = spec["kind"]
        before = {name: sample(pid) for name, pid in self.watch.items()}
        cpu0 = os.times()
        busy0 = system_busy_s()
        t_begin = time.monotonic()
        lags = array("q")
        timeline: list[dict[str, Any]] = []
        sample_every = float(spec.get("sample_every_s", 0))
        aborted = ""
        if kind == "rate":
            rate = float(spec["rate"])
            n = int(spec.get("orders") or round(rate * float(spec["duration"])))
            interval = 1e9 / rate
            hard_stop = time.monotonic_ns() + int((n / rate * 3 + 5) * 1e9)
            t0 = time.monotonic_ns() + 1_000_000
            next_sample = t0 + int(sample_every * 1e9) if sample_every else 0
            mark_acked, mark_lat = 0, 0
            first = last = 0
            max_backlog = max(500, int(rate * self.a.max_backlog_s))
            for k in range(n):
                due = t0 + int(k * interval)
                while True:
                    now = time.monotonic_ns()
                    if now >= due:
                        break
                    self.pump((due - now) / 1e9)
                if now > hard_stop or self.logged_out:
                    aborted = "logged out by peer" if self.logged_out else "client could not keep pace"
                    break
                if k - self.acked[ph] - self.rejects[ph] > max_backlog:
                    aborted = f"gave up: more than {max_backlog} orders unanswered (server not keeping up)"
                    break
                last = self.send_order(ph, k)
                if k == 0:
                    first = last
                lags.append(last - due)
                if next_sample and last >= next_sample:
                    next_sample += int(sample_every * 1e9)
                    lat = self.lat[ph]
                    window = sorted(lat[mark_lat:])
                    timeline.append({"t_s": round((last - t0) / 1e9, 2), "sent": k + 1, "acked": self.acked[ph],
                                     "p50_us": pct(window, 50), "p99_us": pct(window, 99),
                                     "procs": {name: sample(pid) for name, pid in self.watch.items()}})
                    mark_acked, mark_lat = self.acked[ph], len(lat)
            sent = len(lags)
        else:  # burst
            n = int(spec["orders"])
            first = last = time.monotonic_ns()
            for k in range(n):
                last = self.send_order(ph, k)
                if k == 0:
                    first = last
                if k % 32 == 31:
                    self.pump(0)
                if self.logged_out:
                    aborted = "logged out by peer"
                    break
            sent = k + 1
        # drain: wait for every order of this phase, bounded
        drain_deadline = time.monotonic() + self.a.ack_timeout
        while time.monotonic() < drain_deadline and not self.logged_out:
            if self.acked[ph] + self.rejects[ph] >= sent and \
                    (not spec.get("await_fills") or self.filled[ph] >= self.acked[ph]):
                break
            self.pump(0.01)
        t_drained = time.monotonic()
        lost = [cl for cl, (p, _) in self.pending.items() if p == ph]
        for cl in lost:
            del self.pending[cl]
        after = {name: sample(pid) for name, pid in self.watch.items()}
        cpu1 = os.times()
        busy1 = system_busy_s()
        wall = t_drained - t_begin
        last_ack = self.last_ack_ns[ph]
        out: dict[str, Any] = {
            "name": spec.get("name", f"phase{ph}"), "kind": kind, "rate": spec.get("rate"), "planned": n,
            "sent": sent, "acked": self.acked[ph], "filled": self.filled[ph], "rejects": self.rejects[ph],
            "lost": len(lost),
            "aborted": aborted,
            "send_s": round((last - first) / 1e9, 4),
            "achieved_rate": round((sent - 1) / ((last - first) / 1e9), 1) if sent > 1 and last > first else None,
            "ack_rate": (round(self.acked[ph] / ((last_ack - first) / 1e9), 1)
                         if last_ack > first and self.acked[ph] else None),
            "drain_s": round((last_ack - last) / 1e9, 4) if last_ack else None,
            "lat_us": lat_summary(self.lat[ph]),
            "send_lag_us": lat_summary(lags) if lags else {},
            "procs": {},
            "client_cpu_s": round((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system), 3),
        }
        for name in self.watch:
            b, e = before.get(name) or {}, after.get(name) or {}
            if b and e:
                cpu = e["cpu_s"] - b["cpu_s"]
                out["procs"][name] = {"cpu_s": round(cpu, 3), "cpu_util": round(cpu / wall, 3),
                                      "cpu_us_per_order": round(cpu / max(sent, 1) * 1e6, 1),
                                      "rss_kb": e["rss_kb"], "hwm_kb": e["hwm_kb"]}
        ours = out["client_cpu_s"] + sum(v["cpu_s"] for v in out["procs"].values())
        # CPU the rest of the machine used meanwhile: other people's work on a shared machine skews the run
        out["other_cores"] = round(max(0.0, (busy1 - busy0) - ours) / wall, 2)
        if timeline:
            out["timeline"] = timeline
        # settle, then let the next phase start from an idle system
        settle_end = time.monotonic() + float(spec.get("settle_s", 0.5))
        while time.monotonic() < settle_end and not self.logged_out:
            self.pump(settle_end - time.monotonic())
        self.heartbeat_if_idle()
        out["filled"] = self.filled[ph]  # fills that arrived while settling
        if spec.get("done_file"):  # tell whoever holds the next phase's gate that this one is over
            done = Path(spec["done_file"])
            tmp = done.with_name(done.name + ".tmp")
            tmp.write_text(json.dumps(out))
            tmp.replace(done)
        return out

    def wait_for_gate(self, gate: Path, timeout_s: float) -> None:
        """Hold the next phase until `gate` exists (bench/soak rolls the trading day over meanwhile); the
        session stays up: reports are read, TestRequests answered, heartbeats sent while idle.

        A gate that reads "reset" says the server started the session's new day at MsgSeqNum 1 (it logs the
        session out for that): log on again on a new connection, from 1, as a client under such an
        agreement does."""
        deadline = time.monotonic() + timeout_s
        while not gate.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {gate} within {timeout_s:.0f}s")
            if self.logged_out:
                time.sleep(0.2)  # the server ended the day's session; the gate says what comes next
                continue
            self.pump(0.2)
            self.heartbeat_if_idle()
        if gate.read_text().strip() == "reset":
            self.reconnect()
        elif self.logged_out:
            raise ConnectionError("logged out by the server while waiting for the next phase")

    def reconnect(self) -> None:
        """A new connection and a Logon at MsgSeqNum 1 (the previous connection, if still open, is dropped)."""
        if self.sock is not None:
            self.sock.close()
        self.inbuf.clear()
        self.outbuf.clear()
        self.seq, self.logged_on, self.logged_out, self.logout_sent = 1, False, False, False
        self.connect()
        self.logon()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sender", default="BENCH")
    p.add_argument("--target", default="FIXGW")
    p.add_argument("--account", default="ACC1")
    p.add_argument("--symbol", default="AAPL")
    p.add_argument("--qty", default="100")
    p.add_argument("--price", default="190")
    p.add_argument("--heartbeat", type=int, default=30)
    p.add_argument("--plan", required=True, help="JSON list of phases, or @FILE")
    p.add_argument("--watch", action="append", help="NAME=PID of a server to sample CPU and memory of")
    p.add_argument("--ack-timeout", type=float, default=10.0, help="seconds after a phase's last send")
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--max-backlog-s", type=float, default=1.0,
                   help="abandon a fixed-rate phase once this many seconds of orders are unanswered")
    p.add_argument("--sndbuf", type=int, default=262144, help="SO_SNDBUF of the client socket")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    plan = json.loads(Path(a.plan[1:]).read_text() if a.plan.startswith("@") else a.plan)
    c = Client(a)
    result: dict[str, Any] = {"target": a.target, "port": a.port, "phases": [], "error": ""}
    try:
        c.connect()
        c.logon()
        ladder_over = ""
        for ph, spec in enumerate(plan):
            if ladder_over and spec.get("ladder"):
                result["phases"].append({"name": spec.get("name"), "kind": spec["kind"], "rate": spec.get("rate"),
                                         "skipped": ladder_over})
                c.lat.append(array("q"))
                c.acked.append(0)
                c.filled.append(0)
                c.rejects.append(0)
                c.last_ack_ns.append(0)
                continue
            res = c.run_phase(ph, spec)
            kept_pace = (res["achieved_rate"] or 0) >= 0.97 * float(spec["rate"]) and \
                (res["ack_rate"] or 0) >= 0.97 * float(spec["rate"]) if spec["kind"] == "rate" else True
            if spec.get("ladder") and (res["lost"] or res["rejects"] or res["aborted"] or
                                       res["acked"] < res["planned"] or not kept_pace):
                # Same test as bench/report.py sustained(). Past saturation every higher rate only piles up queues (and, against a slow QuickFIX
                # reader, loopback TCP stalls of tens of seconds): stop the ladder here.
                ladder_over = f"not run: {res['name']} was not sustained"
            result["phases"].append(res)
            print(json.dumps({k: res[k] for k in ("name", "sent", "acked", "lost", "rejects", "achieved_rate")}
                             | {"p50": res["lat_us"].get("p50"), "p99": res["lat_us"].get("p99")}), flush=True)
            if c.logged_out:
                result["error"] = "session logged out by the server"
                break
        c.logout()
    except Exception as e:  # the runner reports it; the JSON must still be written
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if c.sock is not None:
            c.sock.close()
    result["late_acks"] = c.late
    result["counts"] = c.counts
    result["texts"] = c.texts
    result["final"] = {name: sample(pid) for name, pid in c.watch.items()}
    result["client_hwm_kb"] = sample(os.getpid()).get("hwm_kb")
    Path(a.out).write_text(json.dumps(result, indent=1))
    return 1 if result["error"] else 0


if __name__ == "__main__":
    sys.exit(main())

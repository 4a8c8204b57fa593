"""A minimal, fast FIX 4.4 venue for the benchmark: acknowledges every NewOrderSingle, nothing else.

The project's venue simulator (`fixgw venue-sim`, QuickFIX + Python rules) tops out near 4,000 orders/s on
these 2-core machines while sharing them with the other processes, which hides the gateway's own ceiling
above that. This one is a single-threaded raw-socket acceptor (the load client's framing): it answers Logon,
TestRequest and Logout, and every NewOrderSingle with an ExecutionReport 150=0/39=0 (and, with
--action fill, a full fill 150=F/39=2 right after, copied to the drop-copy session when one is logged on: a
logon whose SenderCompID ends in "_DC"), writing all answers to one read in one send(). It checks
nothing, stores nothing and never resends: use it only to find where the gateway or the pass-through saturate
(`bench/run --venue fast`). Prints "listening" on stderr when ready; SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import itertools
import select
import signal
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from loadclient import SOH, Stamper, frame, get  # noqa: E402

K = {t: b"\x01" + str(t).encode() + b"=" for t in (35, 49, 56, 11, 1, 55, 54, 38, 44, 112)}


class Conn:
    def __init__(self, sock: socket.socket, our: str, action: str) -> None:
        self.sock = sock
        self.our = our
        self.peer = ""
        self.seq = 1
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.action = action
        self.closing = False
        self.drop_copy = False

    def _msg(self, msg_type: str, stamp: str, body: str) -> None:
        head = f"35={msg_type}\x0149={self.our}\x0156={self.peer}\x0134={self.seq}\x0152={stamp}\x01"
        self.seq += 1
        self.outbuf += frame((head + body).encode())

    def handle(self, msg: bytes, stamp: str, ids: "itertools.count[int]", dc: "list[Conn]") -> None:
        t = get(msg, K[35])
        if t == b"D":
            cl, acc, sym, side = (get(msg, K[n]) or b"" for n in (11, 1, 55, 54))
            qty, px = get(msg, K[38]) or b"0", get(msg, K[44]) or b"0"
            n = next(ids)
            c, a, s, sd, q, p = (x.decode() for x in (cl, acc, sym, side, qty, px))
            common = f"11={c}\x011={a}\x0155={s}\x0154={sd}\x0138={q}\x0140=2\x0144={p}\x0160={stamp}\x01"
            self._msg("8", stamp, f"37=O{n}\x0117=E{n}a\x01150=0\x0139=0\x01151={q}\x0114=0\x016=0\x01" + common)
            if self.action == "fill":
                fill = f"37=O{n}\x0117=E{n}f\x01150=F\x0139=2\x01151=0\x0114={q}\x016={p}\x0132={q}\x0131={p}\x01" + common
                self._msg("8", stamp, fill)
                for c in dc:
                    c._msg("8", stamp, fill)
        elif t == b"A":
            self.peer = (get(msg, K[49]) or b"").decode()
            self.drop_copy = self.peer.endswith("_DC")
            if self.drop_copy:
                self.our += "_DC"  # VENUE_DC -> FIXGW_DC
            self._msg("A", stamp, "98=0\x01108=30\x01")
        elif t == b"1":
            self._msg("0", stamp, f"112={(get(msg, K[112]) or b'').decode()}\x01")
        elif t == b"5":
            self._msg("5", stamp, "")
            self.closing = True

    def frames(self) -> list[bytes]:
        out = []
        buf, pos = self.inbuf, 0
        while True:
            i = buf.find(b"\x019=", pos)
            if i < 0:
                break
            j = buf.find(SOH, i + 3)
            if j < 0:
                break
            end = j + 1 + int(buf[i + 3:j]) + 7
            if end > len(buf):
                break
            out.append(bytes(buf[pos:end]))
            pos = end
        del buf[:pos]
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="minimal fast FIX 4.4 venue (benchmark only)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--comp-id", default="VENUE")
    p.add_argument("--action", choices=("ack", "fill"), default="ack")
    a = p.parse_args(argv)
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    signal.signal(signal.SIGINT, lambda *_: running.__setitem__(0, False))
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.port))
    lsock.listen(8)
    lsock.setblocking(False)
    conns: dict[socket.socket, Conn] = {}
    ids = itertools.count(1)
    stamp = Stamper()
    print("listening", file=sys.stderr, flush=True)
    while running[0]:
        writers = [s for s, c in conns.items() if c.outbuf]
        try:
            r, w, _ = select.select([lsock, *conns], writers, [], 0.5)
        except InterruptedError:
            continue
        for s in r:
            if s is lsock:
                cs, _ = lsock.accept()
                cs.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                cs.setblocking(False)
                conns[cs] = Conn(cs, a.comp_id, a.action)
                continue
            c = conns[s]
            try:
                data = s.recv(1 << 18)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if not data:
                s.close()
                del conns[s]
                continue
            c.inbuf += data
            st = stamp()
            dc = [x for x in conns.values() if x.drop_copy and not x.closing]
            for msg in c.frames():
                c.handle(msg, st, ids, dc)
            w = [*w, *(x.sock for x in (c, *dc) if x.outbuf and x.sock not in w)]
        for s in w:
            c = conns.get(s)
            if c is None or not c.outbuf:
                continue
            try:
                n = s.send(c.outbuf)
                del c.outbuf[:n]
            except BlockingIOError:
                pass
            except ConnectionError:
                c.outbuf.clear()
                c.closing = True
            if c.closing and not c.outbuf:
                s.close()
                del conns[s]
    for s in conns:
        s.close()
    lsock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

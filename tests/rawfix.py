"""A FIX 4.4 session over a raw socket (simplefix framing, no QuickFIX), for messages QuickFIX would not send:
stale SendingTime, undefined tags, wrong group counts. Tests only."""

from __future__ import annotations

import socket
import time

import simplefix


def fix_time(offset_s: float = 0.0) -> str:
    t = time.time() + offset_s
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"


class RawSession:
    def __init__(self, port: int, sender: str, target: str = "FIXGW", begin: str = "FIX.4.4") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sender, self.target, self.begin = sender, target, begin
        self.seq = 1
        self.parser = simplefix.FixParser()
        self.received: list[simplefix.FixMessage] = []

    def send(self, msg_type: str, body: list[tuple[int, str]], sending_time: str | None = None) -> int:
        m = simplefix.FixMessage()
        m.append_pair(8, self.begin, header=True)
        for tag, val in ((35, msg_type), (49, self.sender), (56, self.target), (34, str(self.seq)),
                         (52, sending_time or fix_time())):
            m.append_pair(tag, val, header=True)
        for tag, val in body:
            m.append_pair(tag, val)
        self.sock.sendall(m.encode())
        self.seq += 1
        return self.seq - 1

    def logon(self, reset: bool = True) -> simplefix.FixMessage:
        self.send("A", [(98, "0"), (108, "30")] + ([(141, "Y")] if reset else []))
        return self.wait(lambda m: m.get(35) == b"A")

    def wait(self, pred, timeout: float = 10.0) -> simplefix.FixMessage:
        """The first message (from all received so far) that satisfies `pred`; blocks on the socket."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for m in self.received[seen:]:
                if pred(m):
                    return m
            seen = len(self.received)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching message; got {[m.get(35) for m in self.received]}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise ConnectionError(f"peer closed; got {[m.get(35) for m in self.received]}")
            self.parser.append_buffer(chunk)
            while (m := self.parser.get_message()) is not None:
                self.received.append(m)

    def close(self) -> None:
        self.sock.close()

"""`fixgw admin seq-reset`: the request it puts on the admin socket and how it shows the answer.

The gateway's side of seq_reset lives in gateway/control/admin.py; here a real unix socket stands in for it and
records the one request line, so what the CLI sends is checked byte for byte."""

from __future__ import annotations

import getpass
import json
import socket
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

from gateway.cli import main


class OneRequest:
    """A unix socket that takes one JSON request line and answers it, as the admin socket does."""

    def __init__(self, path: Path, answer: dict[str, Any]) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(str(path))
        self._sock.listen(1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:  # closed without a client: the CLI sent nothing
            return
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            self.requests.append(json.loads(data))
            conn.sendall(json.dumps(self.answer).encode() + b"\n")

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes a pending accept(); close() alone would not
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=10)


@pytest.fixture
def sock_path() -> Iterator[Path]:
    # unix socket paths are limited to 108 bytes: pytest's tmp_path can be longer
    with tempfile.TemporaryDirectory(prefix="fx") as d:
        yield Path(d) / "admin.sock"


def _admin(path: Path, *args: str) -> list[str]:
    return ["admin", "--socket", str(path), "seq-reset", *args]


def test_sends_both_numbers_with_who_and_why_and_prints_the_answer(sock_path: Path, capsys) -> None:
    answer = {"ok": True, "session": "FIXGW->VENUE", "next_sender": 5, "next_target": 7}
    server = OneRequest(sock_path, answer)
    try:
        rc = main(_admin(sock_path, "FIXGW->VENUE", "--next-sender", "5", "--next-target", "7",
                         "--who", "alice", "--why", "venue restarted its sequence"))
    finally:
        server.close()
    assert rc == 0
    assert server.requests == [{"cmd": "seq_reset", "session": "FIXGW->VENUE", "next_sender": 5, "next_target": 7,
                                "who": "alice", "why": "venue restarted its sequence"}]
    assert capsys.readouterr().out == json.dumps(answer, indent=1) + "\n"


def test_one_number_is_enough_and_who_defaults_to_the_login_name(sock_path: Path) -> None:
    server = OneRequest(sock_path, {"ok": True})
    try:
        assert main(_admin(sock_path, "FIXGW->OMS1", "--next-target", "1", "--why", "client reset")) == 0
    finally:
        server.close()
    assert server.requests == [{"cmd": "seq_reset", "session": "FIXGW->OMS1", "next_sender": None,
                                "next_target": 1, "who": getpass.getuser(), "why": "client reset"}]


def test_a_refusal_is_printed_and_exits_1(sock_path: Path, capsys) -> None:
    answer = {"ok": False, "error": "unknown session 'FIXGW->NOPE'"}
    server = OneRequest(sock_path, answer)
    try:
        assert main(_admin(sock_path, "FIXGW->NOPE", "--next-sender", "3", "--why", "typo")) == 1
    finally:
        server.close()
    assert capsys.readouterr().out == json.dumps(answer, indent=1) + "\n"


@pytest.mark.parametrize("args, message", [
    ([], "give --next-sender N, --next-target N or both"),
    (["--next-sender", "0"], "'0' is not a sequence number"),
    (["--next-target", "-4"], "'-4' is not a sequence number"),
    (["--next-sender", "x"], "'x' is not a sequence number"),
])
def test_bad_numbers_are_refused_before_anything_is_sent(sock_path: Path, capsys, args: list[str],
                                                         message: str) -> None:
    server = OneRequest(sock_path, {"ok": True})
    try:
        with pytest.raises(SystemExit) as exit_:
            main(_admin(sock_path, "FIXGW->VENUE", *args, "--why", "reset"))
    finally:
        server.close()
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert server.requests == []


def test_the_why_is_required(sock_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(_admin(sock_path, "FIXGW->VENUE", "--next-sender", "2"))
    assert exit_.value.code == 2 and "--why" in capsys.readouterr().err

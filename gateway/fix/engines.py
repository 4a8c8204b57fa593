"""QuickFIX engines (acceptor, initiators) built from generated settings files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import quickfix as fix

from gateway.fix import settings as qs

KINDS = {"acceptor": fix.ThreadedSocketAcceptor, "initiator": fix.SocketInitiator}


def build(kind: str, app: fix.Application, cfg_path: Path, text: str, file_logs: bool
          ) -> tuple[Any, Callable[[], Any]]:
    """An engine ("acceptor" or "initiator") over `app`, its settings written to `cfg_path`; and a function
    that builds a fresh one from the same file (an engine cannot be started twice: a rollover restarts one)."""
    cls = KINDS[kind]

    def make(settings: fix.SessionSettings) -> Any:
        logs = fix.FileLogFactory(settings) if file_logs else fix.ScreenLogFactory(False, False, False)
        return cls(app, fix.FileStoreFactory(settings), settings, logs)

    engine = make(qs.write_settings(cfg_path, text))
    return engine, lambda: make(fix.SessionSettings(str(cfg_path)))

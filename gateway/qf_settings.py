"""QuickFIX settings generated from the validated configuration, so they can never drift from it.

The generated files live under the state folder (`<state_dir>/quickfix/*.cfg`) for operators to read; they are
rewritten on every start and are not meant to be edited.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import quickfix as fix

FIX_SPECS = Path(__file__).resolve().parent.parent / "fix_specs"


def data_dictionary(begin_string: str = "FIX.4.4") -> Path:
    path = FIX_SPECS / (begin_string.replace(".", "") + ".xml")
    if not path.is_file():
        raise FileNotFoundError(f"FIX data dictionary {path} is missing: the checkout is incomplete")
    return path


@dataclass(frozen=True)
class SessionSpec:
    sender_comp_id: str
    target_comp_id: str
    connect_host: str | None = None  # None: acceptor side
    connect_port: int | None = None
    heartbeat_s: int = 30
    reconnect_s: int = 5


def render(kind: str, sessions: list[SessionSpec], store_dir: Path, log_dir: Path | None,
           accept_port: int | None = None, allowed_remote: list[str] | None = None,
           begin_string: str = "FIX.4.4") -> str:
    """Settings text for one engine: `kind` is 'acceptor' or 'initiator'."""
    default = {
        "ConnectionType": kind,
        "BeginString": begin_string,
        "FileStorePath": str(store_dir),
        "NonStopSession": "Y",
        "UseDataDictionary": "Y",
        "DataDictionary": str(data_dictionary(begin_string)),
        # Clients may carry their own tags (strategy IDs and the like); the gateway forwards them untouched.
        "ValidateUserDefinedFields": "N",
        "AllowUnknownMsgFields": "Y",
        "SocketNodelay": "Y",
        "SocketReuseAddress": "Y",
        "ResetOnLogon": "N",
        "ResetOnLogout": "N",
        "ResetOnDisconnect": "N",
        "PersistMessages": "Y",
        "TimestampPrecision": "6",
        "LogonTimeout": "10",
        "LogoutTimeout": "5",
        "CheckLatency": "N",
    }
    if log_dir is not None:
        default["FileLogPath"] = str(log_dir)
    if accept_port is not None:
        default["SocketAcceptPort"] = str(accept_port)
    if allowed_remote:
        default["AllowedRemoteAddresses"] = ",".join(allowed_remote)
    lines = ["[DEFAULT]"] + [f"{k}={v}" for k, v in default.items()]
    for s in sessions:
        lines += ["", "[SESSION]", f"SenderCompID={s.sender_comp_id}", f"TargetCompID={s.target_comp_id}",
                  f"HeartBtInt={s.heartbeat_s}"]
        if s.connect_host is not None:
            lines += [f"SocketConnectHost={s.connect_host}", f"SocketConnectPort={s.connect_port}",
                      f"ReconnectInterval={s.reconnect_s}"]
    return "\n".join(lines) + "\n"


def write_settings(path: Path, text: str) -> fix.SessionSettings:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return fix.SessionSettings(str(path))

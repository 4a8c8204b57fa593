"""QuickFIX settings generated from the validated configuration, so they can never drift from it.

The generated files live under the state folder (`<state_dir>/quickfix/*.cfg`) for operators to read; they are
rewritten on every start and are not meant to be edited. Sessions a counterparty agreement shapes (version,
sequence resets, timestamp precision, validation, extra tags) get their settings in their own [SESSION] block.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import quickfix as fix

FIX_SPECS = Path(__file__).resolve().parents[2] / "fix_specs"

BEGIN_STRINGS = {"FIX.4.2": "FIX.4.2", "FIX.4.4": "FIX.4.4", "FIX.5.0SP2": "FIXT.1.1"}
# The application messages a user-defined tag may ride on: the requests the gateway forwards and the answers.
EXTRA_TAG_MSG_TYPES = ("D", "G", "F", "8", "9")


def begin_string(fix_version: str) -> str:
    return BEGIN_STRINGS[fix_version]


def data_dictionary(fix_version: str = "FIX.4.4") -> Path:
    """The application data dictionary of a FIX version (FIX.5.0SP2: the app part; FIXT11.xml is transport)."""
    path = FIX_SPECS / (fix_version.replace(".", "") + ".xml")
    if not path.is_file():
        raise FileNotFoundError(f"FIX data dictionary {path} is missing: the checkout is incomplete")
    return path


def dictionary_with_extra_tags(base: Path, tags: list[int], out: Path) -> Path:
    """A copy of `base` in which `tags` are defined and allowed on the requests and their answers.

    A tag the dictionary already names keeps its name; an unknown one is added as a STRING field. This is how a
    strictly validated session still carries a desk's strategy IDs without letting every unknown tag through.
    """
    tree = ET.parse(base)
    root = tree.getroot()
    fields = root.find("fields")
    messages = root.find("messages")
    assert fields is not None and messages is not None, f"{base}: not a QuickFIX data dictionary"
    by_number = {int(f.get("number", "0")): f.get("name", "") for f in fields.findall("field")}
    names = []
    for tag in sorted(set(tags)):
        name = by_number.get(tag)
        if name is None:
            name = f"UserTag{tag}"
            ET.SubElement(fields, "field", number=str(tag), name=name, type="STRING")
        names.append(name)
    for m in messages.findall("message"):
        if m.get("msgtype") not in EXTRA_TAG_MSG_TYPES:
            continue
        present = {f.get("name") for f in m.findall("field")}
        for name in names:
            if name not in present:
                ET.SubElement(m, "field", name=name, required="N")
    out.parent.mkdir(parents=True, exist_ok=True)
    tree.write(out, encoding="utf-8", xml_declaration=True)
    return out


@dataclass(frozen=True)
class SessionSpec:
    sender_comp_id: str
    target_comp_id: str
    connect_host: str | None = None  # None: acceptor side
    connect_port: int | None = None
    heartbeat_s: int = 30
    reconnect_s: int = 5
    fix_version: str = "FIX.4.4"
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    timestamp_precision: int = 3
    # Strict: the FIX session layer's own validation (SendingTime accuracy, unknown tags, tags not defined for
    # the message type, group counts) answers a bad message with a session Reject and nothing goes on.
    strict: bool = False
    max_latency_s: int = 120
    extra_tags: tuple[int, ...] = field(default_factory=tuple)
    accept_port: int | None = None  # an acceptor session on a port of its own (the venue's drop copy)
    # QuickFIX keys of a session schedule (config.schedule.quickfix_settings: StartTime/EndTime, StartDay/EndDay
    # or NonStopSession); None: the [DEFAULT] NonStopSession=Y.
    schedule: dict[str, str] | None = None

    @property
    def begin_string(self) -> str:
        return begin_string(self.fix_version)

    def session_id(self) -> fix.SessionID:
        return fix.SessionID(self.begin_string, self.sender_comp_id, self.target_comp_id)


def _yn(b: bool) -> str:
    return "Y" if b else "N"


def _session_lines(s: SessionSpec, dict_dir: Path | None) -> list[str]:
    app_dict = data_dictionary(s.fix_version)
    if s.extra_tags:
        if dict_dir is None:
            raise ValueError("extra tags need a folder for the generated data dictionary")
        app_dict = dictionary_with_extra_tags(
            app_dict, list(s.extra_tags),
            dict_dir / f"{s.fix_version.replace('.', '')}-{s.sender_comp_id}-{s.target_comp_id}.xml")
    lines = ["", "[SESSION]", f"BeginString={s.begin_string}", f"SenderCompID={s.sender_comp_id}",
             f"TargetCompID={s.target_comp_id}", f"HeartBtInt={s.heartbeat_s}"]
    if s.fix_version == "FIX.5.0SP2":
        lines += [f"TransportDataDictionary={FIX_SPECS / 'FIXT11.xml'}", f"AppDataDictionary={app_dict}",
                  "DefaultApplVerID=FIX.5.0SP2"]
    else:
        lines.append(f"DataDictionary={app_dict}")
    lines += [f"ResetOnLogon={_yn(s.reset_on_logon)}", f"ResetOnLogout={_yn(s.reset_on_logout)}",
              f"ResetOnDisconnect={_yn(s.reset_on_disconnect)}", f"TimestampPrecision={s.timestamp_precision}"]
    if s.strict:
        lines += ["CheckLatency=Y", f"MaxLatency={s.max_latency_s}", "ValidateUserDefinedFields=Y",
                  "AllowUnknownMsgFields=N", "ValidateFieldsHaveValues=Y"]
    else:
        # A venue's reports may carry its own tags; they are forwarded, not refused.
        lines += ["CheckLatency=N", "ValidateUserDefinedFields=N", "AllowUnknownMsgFields=Y"]
    if s.schedule is not None:
        # A session-level NonStopSession overrides [DEFAULT]'s; QuickFIX refuses it next to StartTime/EndTime.
        lines.append(f"NonStopSession={s.schedule.get('NonStopSession', 'N')}")
        lines += [f"{k}={v}" for k, v in s.schedule.items() if k != "NonStopSession"]
    if s.accept_port is not None:
        lines.append(f"SocketAcceptPort={s.accept_port}")
    if s.connect_host is not None:
        lines += [f"SocketConnectHost={s.connect_host}", f"SocketConnectPort={s.connect_port}",
                  f"ReconnectInterval={s.reconnect_s}"]
    return lines


def render(kind: str, sessions: list[SessionSpec], store_dir: Path, log_dir: Path | None,
           accept_port: int | None = None, allowed_remote: list[str] | None = None,
           dict_dir: Path | None = None) -> str:
    """Settings text for one engine: `kind` is 'acceptor' or 'initiator'."""
    default = {
        "ConnectionType": kind,
        "FileStorePath": str(store_dir),
        "NonStopSession": "Y",
        "UseDataDictionary": "Y",
        "SocketNodelay": "Y",
        "SocketReuseAddress": "Y",
        "PersistMessages": "Y",
        "LogonTimeout": "10",
        "LogoutTimeout": "5",
    }
    if log_dir is not None:
        default["FileLogPath"] = str(log_dir)
    if accept_port is not None:
        default["SocketAcceptPort"] = str(accept_port)
    if allowed_remote:
        default["AllowedRemoteAddresses"] = ",".join(allowed_remote)
    lines = ["[DEFAULT]"] + [f"{k}={v}" for k, v in default.items()]
    for s in sessions:
        lines += _session_lines(s, dict_dir)
    return "\n".join(lines) + "\n"


def write_settings(path: Path, text: str) -> fix.SessionSettings:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return fix.SessionSettings(str(path))

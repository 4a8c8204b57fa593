"""Counterparty-proof FIX over real sessions on 127.0.0.1: default accounts, venue session and business rejects,
unanswered requests, no reject answering a reject, sequence policies and operator resets, millisecond
timestamps, strict validation of client messages, and FIX 4.2 / 5.0 SP2 clients through a FIX 4.4 venue."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from config.settings import ClientSession
from sim.venue import Rule
from tests.rawfix import RawSession, fix_time

S1 = "FIXGW->OMS1"


def _er(client, cl: str, exec_type: str, status: str | None = None, timeout: float = 10.0) -> dict[int, str]:
    return client.wait_for(lambda m: m.get(35) == "8" and m.get(11) == cl and m.get(150) == exec_type
                           and (status is None or m.get(39) == status), timeout=timeout)


def _wait_until(pred, timeout: float = 10.0) -> None:
    """For state that has no event to wait on (another thread's dict): poll briefly, fail loudly."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.01)


def _with_clients(stack, *extra: ClientSession, oms1: dict | None = None) -> None:
    acc = stack.cfg.acceptor
    clients = [c.model_copy(update=oms1) if oms1 and c.sender_comp_id == "OMS1" else c for c in acc.clients]
    stack.cfg = stack.cfg.model_copy(update={"acceptor": acc.model_copy(update={"clients": clients + list(extra)})})


def _with_rules(stack, *rules: Rule, **sim: object) -> None:
    stack.sim_cfg = stack.sim_cfg.model_copy(update={"rules": list(rules) + list(stack.sim_cfg.rules), **sim})


def _with_venue(stack, **venue: object) -> None:
    stack.cfg = stack.cfg.model_copy(update={"venue": stack.cfg.venue.model_copy(update=venue)})


def _open_exposure(gw) -> int:
    return gw.risk.engine.open_order_count()


# ------------------------------------------------------------------------------------------ 1: default account
def test_an_oms_that_sends_no_account_trades_through_its_default(stack) -> None:
    _with_clients(stack, oms1={"default_account": "ACC2"})
    stack.start_sim()
    stack.start_gateway()
    oms = stack.client()
    oms.new_order("NA1", "", "AAPL", "1", 10, 190.0)
    _er(oms, "NA1", "F", "2")
    (venue_order,) = stack.sim.orders.values()
    assert venue_order.account == "ACC2"  # the venue copy carries it
    oms.new_order("NA2", "", "JPM", "1", 10, 200.0)  # rests; its cancel carries no Account either
    _er(oms, "NA2", "0")
    oms.cancel("NA3", "NA2", "JPM", "1")
    _er(oms, "NA3", "4", "4")
    oms.new_order("NA4", "ACC3", "AAPL", "1", 10, 190.0)  # an explicit account is still checked
    assert _er(oms, "NA4", "8")[58].startswith("ACCOUNT_NOT_PERMITTED")
    stack.gw.journal.flush()
    from gateway.events.journal_query import query

    rows = {r["cl_ord_id"]: r for r in query(stack.gw.journal.path)}
    assert (rows["NA1"]["account"], rows["NA1"]["account_defaulted"]) == ("ACC2", 1)
    assert rows["NA4"]["account_defaulted"] == 0


def test_a_default_account_outside_the_sessions_accounts_is_a_config_error(tmp_path: Path) -> None:
    from config.errors import ConfigError
    from config.settings import parse_config

    data = {"acceptor": {"port": 9000, "clients": [{"sender_comp_id": "A", "accounts": ["X"],
                                                    "default_account": "Y"}]},
            "venue": {"port": 9001, "sender_comp_id": "G", "target_comp_id": "V"}}
    with pytest.raises(ConfigError) as e:
        parse_config(data, tmp_path / "gw.toml")
    assert "acceptor.clients[0]" in str(e.value) and "default_account" in str(e.value)


# ------------------------------------------------------------------------------------------ 2: venue rejects
@pytest.mark.parametrize("action,code", [("session_reject", "VENUE_SESSION_REJECT"),
                                         ("business_reject", "VENUE_BUSINESS_REJECT")])
def test_a_venue_reject_of_a_forwarded_order_reaches_the_client_and_releases_exposure(stack, action, code) -> None:
    _with_rules(stack, Rule(symbol="AAPL", action=action, text="no such market"))
    stack.start_sim()
    stack.start_gateway()
    oms = stack.client()
    oms.new_order("VR1", "ACC1", "AAPL", "1", 10, 190.0)
    rej = _er(oms, "VR1", "8", "8")
    assert rej[58].startswith(code + ": venue: "), rej[58]
    assert f"docs/runbooks/{code}.md" in rej[58]
    if action == "business_reject":
        assert "no such market" in rej[58]
    gw = stack.gw
    assert not gw.router.ledger.open_orders() and _open_exposure(gw) == 0 and not gw.router.awaiting
    gw.journal.flush()
    from gateway.events.journal_query import query

    (row,) = [r for r in query(gw.journal.path) if r["decision"] == "venue-reject"]
    assert (row["cl_ord_id"], row["code"]) == ("VR1", code)
    # The session is fine: the next order goes through.
    oms.new_order("VR2", "ACC1", "MSFT", "1", 10, 410.0)
    _er(oms, "VR2", "F")


@pytest.mark.parametrize("mode,code", [("session", "VENUE_SESSION_REJECT"), ("business", "VENUE_BUSINESS_REJECT")])
def test_a_venue_reject_of_a_cancel_or_replace_gets_a_cancel_reject(stack, mode, code) -> None:
    _with_rules(stack, amend_reject=mode)
    stack.start_sim()
    stack.start_gateway()
    oms = stack.client()
    oms.new_order("CR1", "ACC1", "JPM", "1", 100, 200.0)  # rests
    _er(oms, "CR1", "0")
    oms.replace("CR2", "CR1", "JPM", "1", 200, 200.0, "ACC1")
    rej = oms.wait_for(lambda m: m.get(35) == "9" and m.get(11) == "CR2")
    assert (rej[434], rej[41]) == ("2", "CR1") and rej[58].startswith(code)
    oms.cancel("CR3", "CR1", "JPM", "1", "ACC1")
    rej = oms.wait_for(lambda m: m.get(35) == "9" and m.get(11) == "CR3")
    assert (rej[434], rej[41]) == ("1", "CR1") and rej[58].startswith(code)
    order = stack.gw.router.ledger.find(S1, "CR1")
    assert order is not None and order.is_open and not order.pending and order.qty == 100


def test_a_request_the_venue_never_answers_raises_an_alert_and_shows_in_status(stack) -> None:
    from gateway.control.admin import status

    _with_rules(stack, Rule(symbol="AAPL", action="silent"))
    _with_venue(stack, answer_timeout_s=0.5)
    stack.start_sim()
    stack.start_gateway()
    oms = stack.client()
    oms.new_order("S1", "ACC1", "AAPL", "1", 10, 190.0)
    gw = stack.gw
    _wait_until(lambda: bool(gw.router.awaiting))
    overdue = gw.router.unanswered(0.5, now=time.monotonic() + 1.0)
    assert [s.msg_type for s in overdue] == ["D"]
    st = status(gw, 0.0)
    assert [r["msg_type"] for r in st["unanswered_requests"]] == ["D"]
    assert gw.metrics.alerts.labels("VENUE_NO_ANSWER")._value.get() == 1
    gw.router.unanswered(0.5, now=time.monotonic() + 2.0)  # alerted once per request, not every tick
    assert gw.metrics.alerts.labels("VENUE_NO_ANSWER")._value.get() == 1


# ------------------------------------------------------------------------------ 3: no reject answers a reject
def _count(log_dir: Path, *fields: str) -> int:
    """Messages in a QuickFIX message log (one a line) that carry every one of `fields` ('35=j', '49=VENUE')."""
    n = 0
    for p in log_dir.glob("*.messages.current.log"):
        for line in p.read_text(errors="replace").splitlines():
            have = set(line.split("\x01"))
            n += all(f in have or any(h.endswith(" " + f) for h in have) for f in fields)
    return n


def test_a_venue_that_rejects_status_requests_is_not_looped_with(stack) -> None:
    _with_rules(stack, Rule(symbol="AAPL", action="silent"), order_status_requests=False)
    stack.start_sim()
    stack.start_gateway()
    oms = stack.client()
    oms.new_order("H1", "ACC1", "AAPL", "1", 10, 190.0)  # the venue keeps quiet: pending new
    _wait_until(lambda: bool(stack.gw.router.awaiting))
    stack.stop_client(oms)
    stack.stop_gateway()
    gw = stack.start_gateway()
    assert gw._unconfirmed
    gw.router.request_status(gw._unconfirmed)  # what housekeeping does once the venue has logged on
    _wait_until(lambda: bool(gw.router.status_unsupported))
    # A full round trip after the venue's 35=j: a reject loop would have exchanged messages by now.
    oms = stack.client(name="oms1")
    oms.new_order("H2", "ACC1", "MSFT", "1", 10, 410.0)
    _er(oms, "H2", "F")
    venue_log = stack.cfg.state_dir / "fixlog" / "venue"
    gw_sent_j = _count(venue_log, "35=j", "49=FIXGW")
    venue_sent_j = _count(venue_log, "35=j", "49=VENUE")
    assert (gw_sent_j, venue_sent_j) == (0, 1)
    order = gw.router.ledger.find(S1, "H1")
    assert order is not None and order.status == "A"  # still pending, never guessed
    assert gw.metrics.alerts.labels("VENUE_STATUS_UNSUPPORTED")._value.get() == 1


def test_a_business_reject_from_a_client_is_not_answered(running) -> None:
    from gateway.fix import messages as fm

    oms = running.client()
    m = fm.new_message("j")
    for tag, val in ((45, "1"), (372, "8"), (380, "0"), (58, "testing")):
        m.setField(tag, val)
    oms.send(m)
    oms.new_order("BJ1", "ACC1", "AAPL", "1", 1, 190.0)
    _er(oms, "BJ1", "F")
    assert not any(f.get(35) == "j" for f in oms.received)


# --------------------------------------------------------------------------- 4: sequence policy and resets
def test_a_venue_that_resets_to_1_on_every_logon_is_reached(stack) -> None:
    _with_rules(stack, reset_on_logon=True)
    _with_venue(stack, reset_on_logon=True)
    stack.start_sim()
    gw = stack.start_gateway()
    oms = stack.client()
    oms.new_order("RS1", "ACC1", "AAPL", "1", 1, 190.0)
    _er(oms, "RS1", "F")
    # The venue restarts (its sequence numbers start again at 1); the gateway logs on again and trades.
    stack.sim.stop()
    _wait_until(lambda: not gw.venue_logged_on.is_set())
    stack.start_sim()
    assert gw.venue_logged_on.wait(15)
    oms.new_order("RS2", "ACC1", "AAPL", "1", 1, 190.0)
    _er(oms, "RS2", "F")
    states = gw.session_states()
    assert states["FIXGW->VENUE"]["next_target"] < 10


def test_a_client_logon_with_reset_seq_num_flag_is_accepted(running) -> None:
    oms = running.client()
    for n in range(3):
        oms.new_order(f"RF{n}", "ACC1", "AAPL", "1", 1, 190.0)
        _er(oms, f"RF{n}", "F")
    running.stop_client(oms)
    from sim.oms_client import OmsClient

    # A fresh store that asks for the reset (Logon 141=Y): both sides start again at 1, and it trades.
    fresh = OmsClient("OMS1", "FIXGW", running.cfg.acceptor.port, running.tmp / "oms1-fresh", reset_on_logon=True)
    fresh.start()
    running.clients.append(fresh)
    assert fresh.wait_logon(15)
    logon = [m for m in fresh.admin_received if m.get(35) == "A"][-1]
    assert (logon[34], logon.get(141)) == ("1", "Y")
    fresh.new_order("RF9", "ACC1", "AAPL", "1", 1, 190.0)
    _er(fresh, "RF9", "F")


def test_operator_seq_reset_lets_a_client_that_lost_its_store_back_in(running) -> None:
    from gateway.control.admin import AdminServer

    gw = running.gw
    oms = running.client()
    for n in range(3):
        oms.new_order(f"SQ{n}", "ACC1", "AAPL", "1", 1, 190.0)
        _er(oms, f"SQ{n}", "F")
    running.stop_client(oms)
    before = gw.session_states()[S1]
    assert before["next_target"] > 3
    admin = AdminServer(gw, running.tmp / "admin.sock")
    answer = asyncio.run(admin.dispatch({"cmd": "seq_reset", "session": S1, "next_sender": 1, "next_target": 1,
                                         "who": "ops@desk", "why": "OMS1 lost its message store"}))
    assert answer["ok"] and answer["to"] == {"next_sender": 1, "next_target": 1}
    oms = running.client(name="oms1-new-store")  # starts at 1 both ways, no 141=Y
    oms.new_order("SQ9", "ACC1", "AAPL", "1", 1, 190.0)
    _er(oms, "SQ9", "F")
    gw.journal.flush()
    from gateway.events.journal_query import query

    (row,) = query(gw.journal.path, table="admin")
    assert (row["action"], row["scope"], row["who"]) == ("seq-reset", S1, "ops@desk")
    with pytest.raises(ValueError):
        gw.seq_reset(S1, 0, None, "ops", "bad number")


# ---------------------------------------------------------------------------------- 5: millisecond stamps
def test_timestamps_on_the_wire_have_millisecond_precision(running) -> None:
    oms = running.client()
    oms.new_order("TS1", "ACC1", "AAPL", "1", 1, 190.0)
    _er(oms, "TS1", "F")
    oms.new_order("TS2", "ACC1", "AAPL", "1", 0, 190.0)  # a gateway reject carries a TransactTime of its own
    _er(oms, "TS2", "8")
    logs = running.cfg.state_dir / "fixlog"
    text = "".join(p.read_text() for p in logs.glob("*/*.messages.current.log"))
    stamps = re.findall(r"\x01(?:52|60|122)=([^\x01]*)", text)
    assert stamps and all(re.fullmatch(r"\d{8}-\d\d:\d\d:\d\d\.\d{3}", s) for s in stamps), set(stamps)


# ------------------------------------------------------------------------------- 6: strict client validation
NOS = [(11, "X1"), (1, "ACC1"), (55, "AAPL"), (54, "1"), (60, ""), (38, "10"), (40, "2"), (44, "190"), (21, "1")]


def _nos(cl: str, *extra: tuple[int, str], drop: tuple[int, ...] = ()) -> list[tuple[int, str]]:
    body = [(t, cl if t == 11 else (fix_time() if t == 60 else v)) for t, v in NOS if t not in drop]
    return body + list(extra)


@pytest.mark.parametrize("name,body,sending_offset_s,reason", [
    ("stale SendingTime", _nos("M1"), -600.0, "10"),
    ("invalid tag number", _nos("M2", (9999, "x")), 0.0, "0"),
    ("tag not defined for the message type", _nos("M3", (150, "0")), 0.0, "2"),
    ("repeating group count mismatch", _nos("M4", (453, "2"), (448, "TRADER1"), (447, "D"), (452, "11")), 0.0, "16"),
])
def test_a_malformed_client_message_gets_a_session_reject_and_nothing_reaches_the_venue(
        running, name, body, sending_offset_s, reason) -> None:
    raw = RawSession(running.cfg.acceptor.port, "OMS2")
    try:
        raw.logon()
        seq = raw.send("D", body, sending_time=fix_time(sending_offset_s))
        rej = raw.wait(lambda m: m.get(35) == b"3")
        assert (rej.get(45), rej.get(373)) == (str(seq).encode(), reason.encode()), name
    finally:
        raw.close()
    assert running.sim.orders == {}
    assert not running.gw.router.ledger.orders


def test_a_tag_listed_for_the_session_is_allowed_and_forwarded(stack) -> None:
    _with_clients(stack, oms1={"extra_tags": [7001, 9999]})
    stack.start_sim()
    stack.start_gateway()
    raw = RawSession(stack.cfg.acceptor.port, "OMS1")
    try:
        raw.logon()
        raw.send("D", _nos("XT1", (7001, "STRAT-A"), (9999, "x")))
        er = raw.wait(lambda m: m.get(35) == b"8" and m.get(150) == b"F")
        assert er.get(11) == b"XT1"
    finally:
        raw.close()
    venue_log = stack.cfg.state_dir / "fixlog" / "venue"
    assert _count(venue_log, "35=D", "49=FIXGW", "7001=STRAT-A") == 1


def test_a_data_field_holding_soh_and_tags_is_read_by_its_length_not_as_fields(running) -> None:
    # EncodedText(355) may hold any bytes, SOH included: read naively, this order would be a replace (35=G) of
    # an order named in 41 for another symbol; read by EncodedTextLen(354) it is the new order it is.
    text = "\x0135=G\x0141=NOPE\x0155=MSFT"
    raw = RawSession(running.cfg.acceptor.port, "OMS2")
    try:
        raw.logon()
        raw.send("D", _nos("DF1", (1, "ACC3"), (354, str(len(text))), (355, text), drop=(1,)))
        er = raw.wait(lambda m: m.get(35) == b"8" and m.get(11) == b"DF1")
        assert (er.get(150), er.get(55)) in ((b"0", b"AAPL"), (b"F", b"AAPL")), er.get(58)
    finally:
        raw.close()
    (order,) = running.gw.router.ledger.orders.values()
    assert (order.cl_ord_id, order.symbol) == ("DF1", "AAPL")


# -------------------------------------------------------------------------------- 9: FIX 4.2 and FIX 5.0 SP2
@pytest.mark.parametrize("version", ["FIX.4.2", "FIX.5.0SP2"])
def test_a_client_of_another_fix_version_trades_through_a_fix44_venue(stack, version) -> None:
    comp = "OMS42" if version == "FIX.4.2" else "OMS50"
    _with_clients(stack, ClientSession(sender_comp_id=comp, accounts=["ACC1", "ACC2"], fix_version=version))
    stack.start_sim()
    stack.start_gateway()
    from sim.oms_client import OmsClient

    c = OmsClient(comp, "FIXGW", stack.cfg.acceptor.port, stack.tmp / comp.lower(), fix_version=version)
    c.start()
    stack.clients.append(c)
    assert c.wait_logon(15)
    fill_type = "2" if version == "FIX.4.2" else "F"
    c.new_order("V1", "ACC1", "AAPL", "1", 100, 190.0)
    ack, fill = _er(c, "V1", "0"), _er(c, "V1", fill_type, "2")
    assert (fill[32], fill[31], fill[14]) == ("100", "190.0", "100")
    if version == "FIX.4.2":
        assert (ack[20], fill[20]) == ("0", "0")
    c.new_order("V2", "ACC1", "JPM", "1", 100, 200.0)  # rests
    _er(c, "V2", "0")
    c.replace("V3", "V2", "JPM", "1", 150, 201.0, "ACC1")
    rep = _er(c, "V3", "5")
    assert (rep[41], rep[38]) == ("V2", "150")
    c.cancel("V4", "V3", "JPM", "1", "ACC1")
    assert _er(c, "V4", "4", "4")[41] == "V3"
    c.new_order("V5", "ACC1", "AAPL", "1", 20_000, 190.0)  # the gateway's own reject
    assert _er(c, "V5", "8", "8")[58].startswith("QTY_MAX")
    c.new_order("V6", "ACC2", "XOM", "1", 10, 110.0)  # the venue's reject
    assert _er(c, "V6", "8", "8")[58] == "venue: instrument halted"
    c.cancel("V7", "NOPE", "JPM", "1", "ACC1")
    assert c.wait_for(lambda m: m.get(35) == "9" and m.get(11) == "V7")[58].startswith("UNKNOWN_ORDER")
    assert not any(m.get(35) == "3" for m in c.admin_received)

"""The venue simulator's market data over real QuickFIX sessions on 127.0.0.1: requests built and answers read by
gateway/fix/market_data.py, snapshots, incrementals on quote changes and fills, a paused feed, trading halts and
rejects. Both ends validate against the FIX 4.4 data dictionary; a message either side refused would show up as a
session Reject (35=3), which every session test checks for."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest
import quickfix as fix

from gateway.fix import market_data as md
from gateway.fix import messages as fm
from gateway.fix import settings as qs
from gateway.fix.application import App
from sim.demo import free_port
from sim.oms_client import OmsClient
from sim.venue import SimConfig, SimSession, VenueSim

PRICES = {"AAPL": 190.0, "MSFT": 410.0}
QUIET_S = 0.3  # how long "nothing arrives" is watched for, after an in-order barrier has already passed


def _msg_type(m: fix.Message) -> str:
    return m.getHeader().getField(fm.MSG_TYPE)


class MdClient:
    """A market-data initiator that keeps every application message it receives, as a copy, in a queue."""

    def __init__(self, port: int, state_dir: Path) -> None:
        self.sid = fix.SessionID("FIX.4.4", "FIXGW_MD", "VENUE_MD")
        self.inbox: queue.Queue[fix.Message] = queue.Queue()
        self.skipped: list[fix.Message] = []  # received, passed over by next(), not taken yet
        self.session_rejects: list[str] = []  # 35=3, either way
        self.logged_on = threading.Event()
        text = qs.render("initiator", [qs.SessionSpec("FIXGW_MD", "VENUE_MD", "127.0.0.1", port, reconnect_s=1)],
                         state_dir / "store", state_dir / "fixlog")
        settings = qs.write_settings(state_dir / "md-client.cfg", text)
        self.app = _MdApp(self)
        self.engine: fix.SocketInitiator | None = fix.SocketInitiator(
            self.app, fix.FileStoreFactory(settings), settings, fix.FileLogFactory(settings))

    def _on_message(self, msg: fix.Message, sid: fix.SessionID) -> None:
        self.inbox.put(fix.Message(msg))  # QuickFIX owns `msg` only for the callback

    def _note_reject(self, way: str, msg: fix.Message) -> None:
        if _msg_type(msg) == "3":
            self.session_rejects.append(way + " " + msg.toString().replace("\x01", "|"))

    def start(self) -> None:
        assert self.engine is not None
        self.engine.start()
        assert self.logged_on.wait(15), "market-data session did not log on"

    def stop(self) -> None:
        if self.engine is not None:
            self.app.logout_all()
            self.engine.stop()
            self.engine = None  # QuickFIX's session registry is process-wide: let the next test's engine in

    def send(self, msg: fix.Message) -> None:
        assert fix.Session.sendToTarget(msg, self.sid)

    def next(self, pred: Callable[[fix.Message], bool], timeout: float = 10.0) -> fix.Message:
        """The first message not taken yet that satisfies `pred`, in arrival order; the ones it passes over stay
        for later calls (so that waiting for one message never hides another)."""
        for i, m in enumerate(self.skipped):
            if pred(m):
                return self.skipped.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            try:
                m = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"no matching market-data message within {timeout}s") from None
            if pred(m):
                return m
            self.skipped.append(m)

    def nothing_within(self, pred: Callable[[fix.Message], bool], seconds: float) -> bool:
        try:
            self.next(pred, seconds)
        except TimeoutError:
            return True
        return False

    def barrier(self, req_id: str, symbol: str = "AAPL") -> fix.Message:
        """A SecurityStatusRequest and its answer: the venue sends in order on one session, so anything it meant
        to publish before the answer has arrived by then (and is kept for next())."""
        self.send(md.security_status_request(req_id, symbol))
        return self.next(lambda m: _msg_type(m) == "f" and fm.get(m, md.SECURITY_STATUS_REQ_ID) == req_id)


class _MdApp(App):
    """App with the session Rejects seen both ways (App's own toAdmin has no hook)."""

    def __init__(self, client: MdClient) -> None:
        super().__init__("md-client", client._on_message, lambda _: client.logged_on.set(),
                         on_admin=lambda m, _: client._note_reject("received", m))
        self.client = client

    def toAdmin(self, msg: fix.Message, sid: fix.SessionID) -> None:
        self.client._note_reject("sent", msg)


def _is(msg_type: str) -> Callable[[fix.Message], bool]:
    return lambda m: _msg_type(m) == msg_type


@pytest.fixture
def venue(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[VenueSim]:
    cfg = SimConfig(port=free_port(), marketdata_port=free_port(), state_dir=tmp_path / "venue",
                    sessions=[SimSession(sender_comp_id="VENUE", target_comp_id="FIXGW")],
                    marketdata=[SimSession(sender_comp_id="VENUE_MD", target_comp_id="FIXGW_MD")],
                    prices=PRICES,
                    md_interval_s=getattr(request, "param", 0.0))
    sim = VenueSim(cfg)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def feed(venue: VenueSim, tmp_path: Path) -> Iterator[MdClient]:
    assert venue.cfg.marketdata_port is not None
    c = MdClient(venue.cfg.marketdata_port, tmp_path / "md")
    c.start()
    try:
        yield c
        assert c.session_rejects == []  # every message, both ways, passed the data dictionary
    finally:
        c.stop()


@pytest.fixture
def orders(venue: VenueSim, tmp_path: Path) -> Iterator[OmsClient]:
    c = OmsClient("FIXGW", "VENUE", venue.cfg.port, tmp_path / "orders")
    c.start()
    assert c.wait_logon(15), "order session did not log on"
    try:
        yield c
    finally:
        c.stop()


def _subscribe(feed: MdClient, req_id: str, symbols: list[str]) -> list[md.Quote]:
    feed.send(md.market_data_request(req_id, symbols))
    snaps = [feed.next(_is("W")) for _ in symbols]
    assert all(fm.get(m, md.MD_REQ_ID) == req_id for m in snaps)
    return [q for m in snaps for q in md.parse_market_data(m)]


def _incremental(feed: MdClient, timeout: float = 10.0) -> list[md.Quote]:
    return md.parse_market_data(feed.next(_is("X"), timeout))


def test_a_subscription_is_answered_with_a_snapshot_per_symbol_from_the_prices(feed) -> None:
    quotes = _subscribe(feed, "R1", ["AAPL", "MSFT"])
    assert quotes == [md.Quote("AAPL", 189.99, 190.01, 190.0), md.Quote("MSFT", 409.99, 410.01, 410.0)]


def test_set_quote_reaches_a_subscriber_as_an_incremental(venue, feed) -> None:
    _subscribe(feed, "R1", ["AAPL", "MSFT"])
    venue.set_quote("MSFT", bid=411.0, ask=411.5)
    m = feed.next(_is("X"))
    assert fm.get(m, md.MD_REQ_ID) == "R1"
    assert md.parse_market_data(m) == [md.Quote("MSFT", 411.0, 411.5, None)]  # only what changed
    assert "279=1" in m.toString()  # a change of existing entries


def test_a_fill_on_the_order_session_is_published_as_a_trade(venue, feed, orders) -> None:
    _subscribe(feed, "R1", ["AAPL"])
    orders.new_order("O1", "ACC1", "AAPL", "1", 30, 190.5)
    er = orders.wait_for(lambda f: f.get(fm.CL_ORD_ID) == "O1" and f.get(fm.EXEC_TYPE) == "F")
    assert er[fm.LAST_PX] == "190.5"
    m = feed.next(_is("X"))
    assert md.parse_market_data(m) == [md.Quote("AAPL", None, None, 190.5)]
    assert "279=0" in m.toString() and "271=30" in m.toString()  # a new trade entry, of the fill's size
    # The last price moved: a new snapshot says so.
    assert _subscribe(feed, "R2", ["AAPL"]) == [md.Quote("AAPL", 189.99, 190.01, 190.5)]


def test_a_paused_feed_publishes_nothing_until_it_is_resumed(venue, feed) -> None:
    _subscribe(feed, "R1", ["AAPL"])
    venue.pause_market_data(True)
    venue.set_quote("AAPL", bid=185.0, ask=185.2)
    feed.barrier("S1")  # answered while paused, and after anything the quote change would have sent
    assert feed.nothing_within(_is("X"), QUIET_S)
    # Requests are still answered, with the quote as it is now.
    assert _subscribe(feed, "R2", ["AAPL"]) == [md.Quote("AAPL", 185.0, 185.2, 190.0)]
    venue.pause_market_data(False)
    venue.set_quote("AAPL", last=185.1)
    quotes = _incremental(feed)
    assert quotes == [md.Quote("AAPL", None, None, 185.1)]


def test_a_halt_is_broadcast_and_the_venue_rejects_orders_in_the_symbol(venue, feed, orders) -> None:
    venue.halt("AAPL", "news pending")
    assert md.parse_security_status(feed.next(_is("f"))) == ("AAPL", True, "news pending")
    orders.new_order("H1", "ACC1", "AAPL", "1", 10, 190.0)
    rej = orders.wait_for(lambda f: f.get(fm.CL_ORD_ID) == "H1")
    assert (rej[fm.EXEC_TYPE], rej[fm.ORD_STATUS], rej[fm.TEXT]) == ("8", "8", "venue: trading halt")
    orders.new_order("M1", "ACC1", "MSFT", "1", 10, 410.0)  # other symbols trade on
    assert orders.wait_for(lambda f: f.get(fm.CL_ORD_ID) == "M1" and f.get(fm.EXEC_TYPE) == "F")
    assert md.parse_security_status(feed.barrier("S1")) == ("AAPL", True, "news pending")

    venue.resume("AAPL")
    assert md.parse_security_status(feed.next(_is("f"))) == ("AAPL", False, "")
    assert md.parse_security_status(feed.barrier("S2")) == ("AAPL", False, "")  # 326=17, ready to trade
    orders.new_order("H2", "ACC1", "AAPL", "1", 10, 190.0)
    assert orders.wait_for(lambda f: f.get(fm.CL_ORD_ID) == "H2" and f.get(fm.EXEC_TYPE) == "F")


def test_an_unknown_symbol_is_rejected_and_the_known_ones_are_served(feed) -> None:
    feed.send(md.market_data_request("R1", ["NOPE", "MSFT"]))
    assert md.parse_md_reject(feed.next(_is("Y"))) == ("R1", "unknown symbol NOPE")
    assert md.parse_market_data(feed.next(_is("W"))) == [md.Quote("MSFT", 409.99, 410.01, 410.0)]


def test_an_unsubscribed_request_gets_nothing_more(venue, feed) -> None:
    _subscribe(feed, "R1", ["AAPL"])
    feed.send(md.market_data_request("R1", ["AAPL"], subscription_type=md.UNSUBSCRIBE))
    feed.barrier("S0")  # the venue reads a session's messages in order: the unsubscription has been handled
    venue.set_quote("AAPL", bid=189.0)
    feed.barrier("S1")
    assert feed.nothing_within(_is("X"), QUIET_S)


def test_the_market_data_session_serves_nothing_but_its_requests(feed, orders) -> None:
    order = fm.new_message("D")
    for tag, val in ((fm.CL_ORD_ID, "X1"), (21, "1"), (fm.SYMBOL, "AAPL"), (fm.SIDE, "1"),
                     (fm.TRANSACT_TIME, fm.utc_timestamp()), (fm.ORDER_QTY, "1"), (fm.ORD_TYPE, "1")):
        order.setField(tag, val)
    feed.send(order)
    j = fm.to_dict(feed.next(_is("j")))
    assert (j[fm.REF_MSG_TYPE], j[fm.BUSINESS_REJECT_REASON]) == ("D", "3")  # unsupported message type
    # ... and the order session serves no market data, as before.
    orders.send(md.market_data_request("R1", ["AAPL"]))
    j = orders.wait_for(lambda f: f.get(35) == "j")
    assert j[fm.REF_MSG_TYPE] == "V"


@pytest.mark.parametrize("venue", [0.1], indirect=True)
def test_the_interval_republishes_the_current_quote_and_pausing_stops_it(venue, feed) -> None:
    _subscribe(feed, "R1", ["AAPL", "MSFT"])
    for _ in range(2):  # nothing changed, yet it comes, every symbol in one message
        m = feed.next(_is("X"), timeout=5)
        assert md.parse_market_data(m) == [md.Quote("AAPL", 189.99, 190.01, 190.0),
                                           md.Quote("MSFT", 409.99, 410.01, 410.0)]
        assert "279=0" not in m.toString()  # never a new trade print
    venue.pause_market_data(True)
    feed.barrier("S1")
    feed.skipped.clear()  # ticks published before the pause may still have been on their way
    assert feed.nothing_within(_is("X"), QUIET_S * 2)  # 6 ticks' worth


# ---------------------------------------------------------------- the parsers on their own
def _x(*entries: dict[int, str]) -> fix.Message:
    import quickfix44 as fix44

    m = fm.new_message("X")
    m.setField(md.MD_REQ_ID, "R1")
    for e in entries:
        g = fix44.MarketDataIncrementalRefresh.NoMDEntries()
        for tag, val in e.items():
            g.setField(tag, val)
        m.addGroup(g)
    return m


def test_an_incremental_with_several_symbols_and_a_delete() -> None:
    m = _x({279: "1", 269: "0", 55: "AAPL", 270: "189.5"}, {279: "0", 269: "2", 55: "MSFT", 270: "411"},
           {279: "2", 269: "1", 55: "AAPL"}, {279: "0", 269: "2", 55: "MSFT", 270: "411.25"})
    assert md.parse_market_data(m) == [md.Quote("AAPL", 189.5, None, None), md.Quote("MSFT", None, None, 411.25)]


def test_messages_that_are_not_market_data_give_no_quotes() -> None:
    assert md.parse_market_data(fm.new_message("8")) == []
    status = fm.new_message("f")
    status.setField(fm.SYMBOL, "AAPL")
    status.setField(md.SECURITY_TRADING_STATUS, "21")  # pre-open: neither halted nor trading
    assert md.parse_security_status(status) == ("AAPL", None, "")


def _validate(m: fix.Message) -> None:
    """Validate `m` as received: QuickFIX parses it with the FIX 4.4 dictionary (rebuilding its groups) and
    checks it; raises on a missing required field, a bad value, or a field out of its group."""
    dd = fix.DataDictionary(str(qs.data_dictionary()))
    hdr = m.getHeader()
    for tag, val in ((8, "FIX.4.4"), (49, "A"), (56, "B"), (34, "1"), (52, fm.utc_timestamp())):
        hdr.setField(tag, val)
    dd.validate(fix.Message(m.toString(), dd, True))


def test_the_requests_validate_against_the_fix44_dictionary() -> None:
    for m in (md.market_data_request("R1", ["AAPL", "MSFT"]), md.security_status_request("S1", "AAPL"),
              md.market_data_request("R1", ["AAPL"], subscription_type=md.UNSUBSCRIBE)):
        _validate(m)
    text = md.market_data_request("R1", ["AAPL", "MSFT"]).toString()
    assert "267=3\x01269=0\x01269=1\x01269=2\x01" in text and "146=2\x0155=AAPL\x0155=MSFT\x01" in text


def test_what_the_venue_sends_validates_against_the_fix44_dictionary() -> None:
    from sim import market_data as smd

    book = smd.initial_book(190.0)
    for m in (smd._snapshot("R1", "AAPL", book, smd.ENTRY_TYPES), smd._snapshot("R1", "AAPL", smd.Book(), ("0",)),
              smd._incremental("R1", {"AAPL": book}, [("AAPL", "0", "1"), ("AAPL", "2", "0")]),
              smd._reject("R1", smd.UNKNOWN_SYMBOL, "unknown symbol NOPE"),
              smd._security_status("AAPL", smd.HALT, "news"), smd._security_status("AAPL", "17", "", req_id="S1")):
        _validate(m)
    with pytest.raises(fix.RequiredTagMissing):  # the check can fail: an incremental entry without its 279
        _validate(_x({269: "0", 55: "AAPL", 270: "189.5"}))

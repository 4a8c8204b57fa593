"""FIX 4.4 market data for the gateway: the requests it sends and what it reads from the answers.

Pure message building and parsing (no threads, no state). Answers are read from their wire form in one pass
(one `toString()` and a split on SOH, as `messages.to_dict` does and for the same reason: each getField is a
SWIG crossing that releases and retakes the GIL, and a group would need one call per entry and field).
"""

from __future__ import annotations

from dataclasses import dataclass

import quickfix as fix
import quickfix44 as fix44

from gateway.fix import messages as fm

# Tags (FIX 4.4).
MD_REQ_ID, SUBSCRIPTION_REQUEST_TYPE, MARKET_DEPTH, MD_UPDATE_TYPE = 262, 263, 264, 265
MD_ENTRY_TYPE, MD_ENTRY_PX, MD_UPDATE_ACTION = 269, 270, 279
SECURITY_STATUS_REQ_ID, SECURITY_TRADING_STATUS = 324, 326

# SubscriptionRequestType: 0 snapshot, 1 snapshot + updates, 2 end the subscription of that MDReqID.
SNAPSHOT, SUBSCRIBE, UNSUBSCRIBE = "0", "1", "2"
ENTRY_BID, ENTRY_OFFER, ENTRY_TRADE = "0", "1", "2"
_DELETE = "2"  # MDUpdateAction
# SecurityTradingStatus: 2 trading halt; 3 resume and 17 ready to trade mean trading.
_HALTED, _TRADING = frozenset({"2"}), frozenset({"3", "17"})


@dataclass(frozen=True, slots=True)
class Quote:
    """What a market-data message says of one symbol. None: the message carries no such entry, or deletes it
    (an incremental refresh's MDUpdateAction 2)."""

    symbol: str
    bid: float | None
    ask: float | None
    last: float | None


def market_data_request(req_id: str, symbols: list[str], *, subscription_type: str = SUBSCRIBE) -> fix.Message:
    """MarketDataRequest (35=V) for top of book (264=1) as incremental refreshes (265=1), bid, offer and trade.

    `subscription_type` "2" with the MDReqID of an earlier request ends that subscription."""
    m = fm.new_message("V")
    m.setField(MD_REQ_ID, req_id)
    m.setField(SUBSCRIPTION_REQUEST_TYPE, subscription_type)
    m.setField(MARKET_DEPTH, "1")
    m.setField(MD_UPDATE_TYPE, "1")
    for entry_type in (ENTRY_BID, ENTRY_OFFER, ENTRY_TRADE):
        g = fix44.MarketDataRequest.NoMDEntryTypes()
        g.setField(MD_ENTRY_TYPE, entry_type)
        m.addGroup(g)
    for symbol in symbols:
        g = fix44.MarketDataRequest.NoRelatedSym()
        g.setField(fm.SYMBOL, symbol)
        m.addGroup(g)
    return m


def security_status_request(req_id: str, symbol: str, *, subscription_type: str = SNAPSHOT) -> fix.Message:
    """SecurityStatusRequest (35=e): the symbol's current trading status, once (263=0) by default."""
    m = fm.new_message("e")
    m.setField(SECURITY_STATUS_REQ_ID, req_id)
    m.setField(fm.SYMBOL, symbol)
    m.setField(SUBSCRIPTION_REQUEST_TYPE, subscription_type)
    return m


def _price(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None  # no usable price is no price: checks that need one fail closed


class _Entries:
    """Per-symbol bid/ask/last of a message's entries, in the order symbols first appear."""

    def __init__(self) -> None:
        self.by_symbol: dict[str, list[float | None]] = {}

    def apply(self, symbol: str, entry_type: str, px: float | None) -> None:
        if not symbol or entry_type not in (ENTRY_BID, ENTRY_OFFER, ENTRY_TRADE):
            return
        self.by_symbol.setdefault(symbol, [None, None, None])[int(entry_type)] = px

    def quotes(self) -> list[Quote]:
        return [Quote(sym, *v) for sym, v in self.by_symbol.items()]


def parse_market_data(msg: fix.Message) -> list[Quote]:
    """The quotes of a MarketDataSnapshotFullRefresh (35=W: one symbol, from the body) or a
    MarketDataIncrementalRefresh (35=X: a symbol per entry, several possible); [] for any other message.

    When an entry type occurs twice for a symbol, the later entry wins (the newer trade). An X entry without a
    Symbol takes the body's (some venues put it there), and is skipped without either."""
    fields = msg.toString().split("\x01")
    msg_type = next((p[3:] for p in fields if p.startswith("35=")), "")
    if msg_type not in ("W", "X"):
        return []
    # W: entries start at 269 and never carry 55; X: entries start at 279 and carry their own 55.
    start = "269" if msg_type == "W" else "279"
    body_symbol = ""
    entries: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for part in fields:
        tag, _, value = part.partition("=")
        if tag == start:
            current = {}
            entries.append(current)
        if tag == "55" and (msg_type == "W" or current is None):
            body_symbol = value
        elif current is not None and tag in ("55", "269", "270", "279"):
            current[tag] = value
    out = _Entries()
    for e in entries:
        px = None if e.get("279") == _DELETE else _price(e.get("270", ""))
        out.apply(e.get("55", body_symbol), e.get("269", ""), px)
    if msg_type == "W" and not out.by_symbol and body_symbol:
        return [Quote(body_symbol, None, None, None)]  # an empty book
    return out.quotes()


def parse_security_status(msg: fix.Message) -> tuple[str, bool | None, str]:
    """(Symbol, halted, Text) of a SecurityStatus (35=f): halted is True for 326=2, False for 3 (resume) and
    17 (ready to trade), None for any other status or none."""
    f = fm.to_dict(msg)
    status = f.get(SECURITY_TRADING_STATUS, "")
    halted = True if status in _HALTED else False if status in _TRADING else None
    return f.get(fm.SYMBOL, ""), halted, f.get(fm.TEXT, "")


def parse_md_reject(msg: fix.Message) -> tuple[str, str]:
    """(MDReqID, Text) of a MarketDataRequestReject (35=Y)."""
    f = fm.to_dict(msg)
    return f.get(MD_REQ_ID, ""), f.get(fm.TEXT, "")

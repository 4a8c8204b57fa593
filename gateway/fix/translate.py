"""FIX dialects: sessions speak FIX.4.2, FIX.4.4 or FIX.5.0SP2 (over FIXT.1.1); the gateway thinks in FIX 4.4.

`inbound` turns a message received on a session into FIX 4.4 semantics, `outbound` renders a FIX-4.4-semantics
message for a session. FIX.4.4 sessions are the identity: the message object itself, no copy, no parse (the
hot path). Other dialects are rebuilt field by field from `toString()` (the SWIG layer does not expose FieldMap
iteration), keeping the body fields the target dictionary defines for the message type, plus the session's
user-defined extra tags at top level. Repeating groups go across whole when the target defines the group for
the message type, instance fields filtered by the target's group definition (the Parties group 453 among them).

Conversions (beyond dropping what the target does not define):

  4.2 -> 4.4 ExecutionReport      ExecTransType(20) is removed and folded into ExecType(150):
      20=0 150=1|2 -> 150=F     20=0 other -> unchanged
      20=1 (CANCEL) -> 150=H    20=2 (CORRECT) -> 150=G    20=3 (STATUS) -> 150=I
      (4.2 cancels and corrects name an execution, i.e. a fill: 4.4 has only trade cancel/correct for them.)
      OrdStatus(39)=5 (Replaced, gone in 4.4) -> 0, 1 or 2 from CumQty(14)/LeavesQty(151).
  4.4 -> 4.2 ExecutionReport      ExecTransType(20) is required in 4.2 and is added:
      150=F -> 20=0 150=2 if 39=2 else 1
      150=G -> 20=2 (CORRECT)  150=H -> 20=1 (CANCEL)  150=I -> 20=3 (STATUS); for these three 150 mirrors
                39 (4.2 status reports do so; a corrected or busted fill leaves the order in 39's state), but
                39=D (accepted for bidding) has no ExecType and gives 150=0
      other 150 -> 20=0, 150 unchanged (4.4's other ExecTypes all exist in 4.2)
      Symbol(55), required in 4.2, is set to "[N/A]" when the 4.4 report has none.
  5.0SP2 -> 4.4 ExecutionReport   150=J|K|L|M|N (clearing hold/release, triggered, locked, released: no 4.4
      counterpart) -> 150=I, an order status report: the report still states the order's current state in
      39/14/151, which is all 4.4 can say about it. 39=5 -> derived as for 4.2. AvgPx(6), required in 4.4
      but not in 5.0SP2, is set to 0 when CumQty is 0 (otherwise it stays absent: it cannot be derived).
  Rule80A(47, 4.2) <-> OrderCapacity(528, 4.4/5.0): only A (agency), I (individual), P (principal) and W
      (agent for other member), whose meanings coincide; 47's other values fold program-trading and
      short-exempt flags into one letter and 528 G/R have no Rule80A letter: those are dropped. 528 is turned
      into 47 only without OrderRestrictions(529), which 4.2 cannot carry and which 47=A etc. would deny.
  ExecBroker(76), ClientID(109), ClearingFirm(439) (4.2) <-> Parties(453) entries with PartyRole(452) 1
      (executing firm), 3 (client ID), 4 (clearing firm), PartyIDSource(447) D (proprietary) on the way in.
  OrdType(40) 5 (market on close) / B (limit on close) (4.2) <-> OrdType 1 / 2 with TimeInForce(59) 7
      (at the close), the way FIX 4.3 replaced them.
  HandlInst(21), required in 4.2 D and G, defaults to 1 (automated, private) when the 4.4 request has none.

Dropped: every body field the target dictionary does not define for the message type and is not a listed
extra tag, e.g. from 4.2 CustomerOrFirm(204), MaturityDay(205), ClearingAccount(440), Rule80A values other
than A/I/P/W; to 4.2 every 4.4-only field (OrderCapacity besides the mapping above, Parties entries of other
roles, the Instrument block beyond Symbol/SecurityID...). A field whose value the target's enumeration lacks
(e.g. 4.4 CxlRejReason 99 or OrdRejReason 11+ to 4.2) is dropped from reports, but in requests (D, G, F, H)
it raises Untranslatable: a changed order must not reach the market (e.g. 4.4 TimeInForce 7 with OrdType 3).
A message type the target does not define, or a required field the target needs and no rule supplies, raises
Untranslatable on the way out; on the way in missing fields are left to the router, which copes with them.

Header: inbound keeps the header fields FIX 4.4's header defines (PossDupFlag included: the router
de-duplicates resends on it) and sets BeginString FIX.4.4; outbound copies carry only routing header fields
the target's header defines, without BeginString/BodyLength/CompIDs/MsgSeqNum/SendingTime (QuickFIX fills
them on sendToTarget) and without PossDupFlag(43), PossResend(97), OrigSendingTime(122) and the Hops group
(627), which belong to the hop the message came in on.

FIXT.1.1 sessions are taken to carry FIX.5.0SP2 application messages (their DefaultApplVerID); a per-message
ApplVerID(1128) naming another version is not honoured.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import quickfix as fix

SPEC_DIR = Path(__file__).resolve().parents[2] / "fix_specs"
APP_DICTIONARIES = {"FIX.4.2": "FIX42.xml", "FIX.4.4": "FIX44.xml", "FIXT.1.1": "FIX50SP2.xml"}
TRANSPORT_DICTIONARY = "FIXT11.xml"
INTERNAL = "FIX.4.4"

BEGIN_STRING, BODY_LENGTH, CHECK_SUM, MSG_SEQ_NUM, MSG_TYPE = 8, 9, 10, 34, 35
SENDER_COMP_ID, SENDING_TIME, TARGET_COMP_ID = 49, 52, 56
POSS_DUP, POSS_RESEND, ORIG_SENDING_TIME, NO_HOPS = 43, 97, 122, 627
AVG_PX, CUM_QTY, EXEC_TRANS_TYPE, HANDL_INST, ORD_STATUS, ORD_TYPE = 6, 14, 20, 21, 39, 40
RULE_80A, SYMBOL, TIME_IN_FORCE, EXEC_TYPE, LEAVES_QTY = 47, 55, 59, 150, 151
EXEC_BROKER, CLIENT_ID, CLEARING_FIRM = 76, 109, 439
NO_PARTY_IDS, PARTY_ID, PARTY_ID_SOURCE, PARTY_ROLE = 453, 448, 447, 452
ORDER_CAPACITY, ORDER_RESTRICTIONS = 528, 529

# QuickFIX fills these on every send; copying them would only be overwritten (or, for 9/10, be wrong).
_SESSION_HEADER = frozenset({BEGIN_STRING, BODY_LENGTH, MSG_SEQ_NUM, SENDER_COMP_ID, SENDING_TIME,
                             TARGET_COMP_ID})
_HOP_HEADER = frozenset({POSS_DUP, POSS_RESEND, ORIG_SENDING_TIME, NO_HOPS, 628, 629, 630})
_TRAILER = frozenset({93, 89, CHECK_SUM})
_REQUESTS = frozenset({"D", "G", "F", "H"})

_RULE80A_TO_CAPACITY = {"A": "A", "I": "I", "P": "P", "W": "W"}  # the same letter means the same thing
_PARTY_TAG_ROLE = ((EXEC_BROKER, "1"), (CLIENT_ID, "3"), (CLEARING_FIRM, "4"))
_ROLE_PARTY_TAG = {role: tag for tag, role in _PARTY_TAG_ROLE}
_AT_CLOSE = {"5": "1", "B": "2"}  # 4.2 OrdType -> 4.4 OrdType with TimeInForce 7
_AT_CLOSE_42 = {v: k for k, v in _AT_CLOSE.items()}
_MIRROR_NO_EXEC_TYPE = {"D": "0"}  # OrdStatus values 4.2 ExecType lacks (D there means Restated)
_50_ONLY_EXEC_TYPES = frozenset("JKLMN")
_NO_EXTRA: frozenset[int] = frozenset()  # user-defined extras are allowed at top level only

# One parsed body element: (tag, value, None) for a field, (count tag, count, instances) for a group.
Item = tuple[int, str, "list[list[Item]] | None"]


class Untranslatable(ValueError):
    """The message has no faithful rendering in the other dialect: reject it rather than send another one."""

    def __init__(self, msg_type: str, tag: int, value: str, why: str) -> None:
        super().__init__(f"35={msg_type}: tag {tag}={value!r}: {why}")
        self.msg_type, self.tag, self.value = msg_type, tag, value


class Layout:
    """The fields one message type, or one instance of a repeating group, defines."""

    __slots__ = ("fields", "required", "groups", "delim", "_order")

    def __init__(self, order: list[int], required: set[int], groups: dict[int, Layout]) -> None:
        self.fields = frozenset(order)
        self.required = frozenset(required)
        self.groups = groups
        self.delim = order[0] if order else 0
        self._order = order

    def order_array(self) -> fix.IntArray:
        """The group's field order as QuickFIX wants it (0-terminated), so instances go out in spec order."""
        arr = fix.IntArray(len(self._order) + 1)
        for i, tag in enumerate(self._order):
            arr[i] = tag
        arr[len(self._order)] = 0
        return arr


class _Spec:
    """What translation needs from one dictionary XML: layouts by message type, enumerations, header tags."""

    __slots__ = ("messages", "enums", "multi", "header")

    def __init__(self, path: Path) -> None:
        root = ET.parse(path).getroot()
        self.enums: dict[int, frozenset[str]] = {}
        self.multi: set[int] = set()
        names: dict[str, int] = {}
        for f in _children(root, "fields"):
            num = int(f.get("number", "0"))
            names[f.get("name", "")] = num
            values = [v.get("enum", "") for v in f.findall("value")]
            if values:
                self.enums[num] = frozenset(values)
            if f.get("type", "").upper().startswith("MULTIPLE"):
                self.multi.add(num)
        comps = {c.get("name", ""): c for c in _children(root, "components")}
        self.messages = {m.get("msgtype", ""): _layout(m, True, names, comps, False)
                         for m in _children(root, "messages")}
        header = root.find("header")
        self.header = _layout(header, True, names, comps, False).fields if header is not None else frozenset()

    def valid(self, tag: int, value: str) -> bool:
        allowed = self.enums.get(tag)
        if allowed is None:
            return True
        if tag in self.multi:
            return all(v in allowed for v in value.split(" "))
        return value in allowed


def _children(root: ET.Element, name: str) -> list[ET.Element]:
    node = root.find(name)
    return list(node) if node is not None else []


def _layout(node: ET.Element, required_ctx: bool, names: dict[str, int], comps: dict[str, ET.Element],
            in_group: bool) -> Layout:
    """A Layout as QuickFIX's DataDictionary reads the XML: components expand in place, a component's fields
    are required only when the component reference is, and components inside a group require nothing."""
    order: list[int] = []
    required: set[int] = set()
    groups: dict[int, Layout] = {}

    def walk(n: ET.Element, ctx: bool) -> None:
        for ch in n:
            if ch.tag == "component":
                walk(comps[ch.get("name", "")], not in_group and ch.get("required") == "Y")
                continue
            tag = names[ch.get("name", "")]
            order.append(tag)
            if ctx and ch.get("required") == "Y":
                required.add(tag)
            if ch.tag == "group":
                groups[tag] = _layout(ch, ch.get("required") == "Y", names, comps, True)

    walk(node, required_ctx)
    return Layout(order, required, groups)


@lru_cache(maxsize=None)
def _spec(path: Path) -> _Spec:
    return _Spec(path)


@lru_cache(maxsize=None)
def _dictionary(path: Path) -> fix.DataDictionary:
    # Read-only after load, so one per file serves every session.
    return fix.DataDictionary(str(path))


class Dialect:
    """How one session speaks: its begin string, its application dictionary and its allowed extra tags."""

    __slots__ = ("begin_string", "extra", "identity", "dd", "transport_dd", "spec", "header")

    def __init__(self, begin_string: str, extra: frozenset[int] = frozenset(), spec_dir: Path = SPEC_DIR) -> None:
        if begin_string not in APP_DICTIONARIES:
            raise ValueError(f"unsupported begin string {begin_string!r}: one of {', '.join(APP_DICTIONARIES)}")
        self.begin_string = begin_string
        self.extra = frozenset(extra)
        self.identity = begin_string == INTERNAL
        path = spec_dir / APP_DICTIONARIES[begin_string]
        self.dd = _dictionary(path)
        self.spec = _spec(path)
        fixt = begin_string == "FIXT.1.1"
        self.transport_dd = _dictionary(spec_dir / TRANSPORT_DICTIONARY) if fixt else None
        self.header = _spec(spec_dir / TRANSPORT_DICTIONARY).header if fixt else self.spec.header

    def __repr__(self) -> str:
        return f"Dialect({self.begin_string!r}, extra={sorted(self.extra)})"


def _internal_spec() -> _Spec:
    return _spec(SPEC_DIR / APP_DICTIONARIES[INTERNAL])


# ---------------------------------------------------------------- public API
def inbound(msg: fix.Message, d: Dialect) -> fix.Message:
    """`msg` as received on a session speaking `d`, in FIX 4.4 semantics (the same object for FIX.4.4)."""
    if d.identity:
        return msg
    header, mt, body = _split(msg, d.header, d.spec)
    if d.begin_string == "FIX.4.2":
        _from_42(mt, body)
    elif mt == "8":
        _from_50_report(body)
    target = _internal_spec()
    layout = target.messages.get(mt)
    if layout is None:
        raise Untranslatable(mt, MSG_TYPE, mt, "FIX 4.4 defines no such message type")
    if mt == "8" and _get(body, AVG_PX) is None and _num(_get(body, CUM_QTY)) == 0.0:
        body.append((AVG_PX, "0", None))
    items = _render(mt, body, layout, target, d.extra, strict=mt in _REQUESTS)
    out = _build(mt, items, layout)
    hdr = out.getHeader()
    hdr.setField(BEGIN_STRING, INTERNAL)
    for tag, value in header:
        if tag in target.header and tag not in (BEGIN_STRING, BODY_LENGTH, MSG_TYPE, NO_HOPS, 628, 629, 630):
            hdr.setField(tag, value)
    return out


def outbound(msg44: fix.Message, d: Dialect) -> fix.Message:
    """A FIX-4.4-semantics message rendered for a session speaking `d`: the same object for FIX.4.4, else a
    new message whose header QuickFIX completes on sendToTarget. Raises Untranslatable (see the module doc)."""
    if d.identity:
        return msg44
    internal = _internal_spec()
    header, mt, body = _split(msg44, internal.header, internal)
    layout = d.spec.messages.get(mt)
    if layout is None:
        raise Untranslatable(mt, MSG_TYPE, mt, f"{d.begin_string} defines no such message type")
    if d.begin_string == "FIX.4.2":
        _to_42(mt, body, layout)
    items = _render(mt, body, layout, d.spec, d.extra, strict=mt in _REQUESTS)
    for tag in layout.required:
        if _get(items, tag) is None:
            raise Untranslatable(mt, tag, "", f"required in {d.begin_string} and no counterpart in the message")
    out = _build(mt, items, layout)
    hdr = out.getHeader()
    for tag, value in header:
        if tag in d.header and tag not in _SESSION_HEADER and tag not in _HOP_HEADER and tag != MSG_TYPE:
            hdr.setField(tag, value)
    return out


# ---------------------------------------------------------------- conversions
def _from_42(mt: str, body: list[Item]) -> None:
    if mt == "8":
        trans = _pop(body, EXEC_TRANS_TYPE) or "0"
        exec_type = _get(body, EXEC_TYPE) or ""
        if trans == "0":
            if exec_type in ("1", "2"):
                _set(body, EXEC_TYPE, "F")
        elif trans in ("1", "2", "3"):
            _set(body, EXEC_TYPE, {"1": "H", "2": "G", "3": "I"}[trans])
        else:
            raise Untranslatable(mt, EXEC_TRANS_TYPE, trans, "not a FIX 4.2 ExecTransType")
        if _get(body, ORD_STATUS) == "5":
            _set(body, ORD_STATUS, _status_after_replace(body))
    if mt in ("8", "D", "G"):
        ord_type = _get(body, ORD_TYPE)
        if ord_type in _AT_CLOSE:
            _set(body, ORD_TYPE, _AT_CLOSE[ord_type])
            _set(body, TIME_IN_FORCE, "7")
    capacity = _RULE80A_TO_CAPACITY.get(_pop(body, RULE_80A) or "")
    if capacity is not None and _get(body, ORDER_CAPACITY) is None:
        body.append((ORDER_CAPACITY, capacity, None))
    parties: list[list[Item]] = []
    for tag, role in _PARTY_TAG_ROLE:
        party = _pop(body, tag)
        if party:
            parties.append([(PARTY_ID, party, None), (PARTY_ID_SOURCE, "D", None), (PARTY_ROLE, role, None)])
    if parties and _get(body, NO_PARTY_IDS) is None:
        body.append((NO_PARTY_IDS, str(len(parties)), parties))


def _from_50_report(body: list[Item]) -> None:
    if (_get(body, EXEC_TYPE) or "") in _50_ONLY_EXEC_TYPES:
        _set(body, EXEC_TYPE, "I")
    if _get(body, ORD_STATUS) == "5":
        _set(body, ORD_STATUS, _status_after_replace(body))


def _to_42(mt: str, body: list[Item], layout: Layout) -> None:
    if mt == "8":
        exec_type = _get(body, EXEC_TYPE) or ""
        status = _get(body, ORD_STATUS) or ""
        if exec_type == "F":
            trans, exec_type = "0", "2" if status == "2" else "1"
        elif exec_type in ("G", "H", "I"):
            trans = {"G": "2", "H": "1", "I": "3"}[exec_type]
            exec_type = _MIRROR_NO_EXEC_TYPE.get(status, status)
        else:
            trans = "0"
        _set(body, EXEC_TYPE, exec_type)
        body.append((EXEC_TRANS_TYPE, trans, None))
        if _get(body, SYMBOL) is None:
            body.append((SYMBOL, "[N/A]", None))
    if mt in ("8", "D", "G") and _get(body, TIME_IN_FORCE) == "7":
        at_close = _AT_CLOSE_42.get(_get(body, ORD_TYPE) or "")
        if at_close is not None:
            _set(body, ORD_TYPE, at_close)
            _pop(body, TIME_IN_FORCE)
    if mt in ("D", "G") and _get(body, HANDL_INST) is None:
        body.append((HANDL_INST, "1", None))
    capacity = _get(body, ORDER_CAPACITY)
    if (capacity in _RULE80A_TO_CAPACITY and RULE_80A in layout.fields and _get(body, RULE_80A) is None
            and _get(body, ORDER_RESTRICTIONS) is None):
        body.append((RULE_80A, capacity, None))
    for tag, _, instances in list(body):
        if tag == NO_PARTY_IDS and instances:
            for inst in instances:
                party_tag = _ROLE_PARTY_TAG.get(_get(inst, PARTY_ROLE) or "")
                party = _get(inst, PARTY_ID)
                if party_tag in layout.fields and party and _get(body, party_tag) is None:
                    body.append((party_tag, party, None))


def _status_after_replace(body: list[Item]) -> str:
    """OrdStatus for 4.2's 'Replaced', which 4.4 dropped: what the quantities say the order now is."""
    if (_num(_get(body, CUM_QTY)) or 0.0) > 0.0:
        return "2" if (_num(_get(body, LEAVES_QTY)) or 0.0) <= 0.0 else "1"
    return "0"


# ---------------------------------------------------------------- parse, filter, build
def _split(msg: fix.Message, header_tags: frozenset[int],
           spec: _Spec) -> tuple[list[tuple[int, str]], str, list[Item]]:
    """Header fields, MsgType and the body as a tree, from the wire form: header first, trailer last."""
    header: list[tuple[int, str]] = []
    tokens: list[tuple[int, str]] = []
    in_header = True
    for part in msg.toString().split("\x01"):
        if not part:
            continue
        tag_s, _, value = part.partition("=")
        tag = int(tag_s)
        if in_header and tag in header_tags:
            header.append((tag, value))
        elif tag not in _TRAILER:
            in_header = False
            tokens.append((tag, value))
    mt = msg.getHeader().getField(MSG_TYPE)
    layout = spec.messages.get(mt)
    groups = layout.groups if layout is not None else {}
    body: list[Item] = []
    i, n = 0, len(tokens)
    while i < n:
        tag, value = tokens[i]
        i += 1
        sub = groups.get(tag)
        if sub is None:
            body.append((tag, value, None))
        else:
            instances, i = _parse_group(tokens, i, sub)
            body.append((tag, value, instances))
    return header, mt, body


def _parse_group(tokens: list[tuple[int, str]], i: int, g: Layout) -> tuple[list[list[Item]], int]:
    """Instances of one group as QuickFIX delimits them: a new one at the delimiter or at a repeated field."""
    instances: list[list[Item]] = []
    cur: list[Item] = []
    seen: set[int] = set()
    n = len(tokens)
    while i < n:
        tag, value = tokens[i]
        if tag not in g.fields:
            break
        if tag == g.delim or tag in seen or not instances:
            cur, seen = [], set()
            instances.append(cur)
        i += 1
        seen.add(tag)
        sub = g.groups.get(tag)
        if sub is None:
            cur.append((tag, value, None))
        else:
            nested, i = _parse_group(tokens, i, sub)
            cur.append((tag, value, nested))
    return instances, i


def _render(mt: str, items: list[Item], layout: Layout, spec: _Spec, extra: frozenset[int],
            strict: bool) -> list[Item]:
    """The items `layout` defines (or `extra` lists), groups filtered instance by instance."""
    out: list[Item] = []
    for tag, value, instances in items:
        if instances is not None:
            sub = layout.groups.get(tag)
            if sub is None:
                continue
            kept = [r for r in (_render(mt, inst, sub, spec, _NO_EXTRA, strict) for inst in instances)
                    if r and r[0][0] == sub.delim]  # an instance without its delimiter cannot be delimited
            if kept:
                out.append((tag, str(len(kept)), kept))
        elif tag in layout.fields or tag in extra:
            if spec.valid(tag, value):
                out.append((tag, value, None))
            elif strict or tag in layout.required:
                raise Untranslatable(mt, tag, value, "value not in the target dictionary's enumeration")
    return out


def _build(mt: str, items: list[Item], layout: Layout) -> fix.Message:
    out = fix.Message()
    out.getHeader().setField(MSG_TYPE, mt)
    _fill(out, items, layout)
    return out


def _fill(fmap: fix.FieldMap, items: list[Item], layout: Layout) -> None:
    for tag, value, instances in items:
        if instances is None:
            fmap.setField(tag, value)
            continue
        sub = layout.groups[tag]
        order = sub.order_array()
        for inst in instances:
            g = fix.Group(tag, sub.delim, order)
            _fill(g, inst, sub)
            fmap.addGroup(g)  # sets the count field too


def _get(items: list[Item], tag: int) -> str | None:
    for t, v, _ in items:
        if t == tag:
            return v
    return None


def _set(items: list[Item], tag: int, value: str) -> None:
    for i, (t, _, _) in enumerate(items):
        if t == tag:
            items[i] = (tag, value, None)
            return
    items.append((tag, value, None))


def _pop(items: list[Item], tag: int) -> str | None:
    for i, (t, v, _) in enumerate(items):
        if t == tag:
            del items[i]
            return v
    return None


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

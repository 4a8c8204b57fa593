"""Pure, in-memory matching of the gateway's fills against the drop copy's.

No I/O and no clock: every record carries the caller's receive time, and tick(now_ns) is the only other
source of time. Presence breaks are dated at the moment their grace period ran out (not at the moment
someone noticed), and every add first expires what was due before it, so the outcome does not depend on
how often the caller ticks. That is what makes the live store, a restart replay and the offline logs agree.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import NamedTuple

from gateway.recon.events import BreakOpened, BreakResolved, Event, UnknownFill, UnknownFillCovered
from gateway.recon.model import (Break, BreakStatus, BreakType, FillRecord, FillView, Source, format_qty,
                                 side_sign)

QTY_EPSILON = 1e-9
_MISMATCH_TYPES = (BreakType.QTY_MISMATCH, BreakType.PRICE_MISMATCH, BreakType.SIDE_MISMATCH)
_FIELD = {BreakType.QTY_MISMATCH: "qty", BreakType.PRICE_MISMATCH: "px", BreakType.SIDE_MISMATCH: "side"}


def _show(view: FillView, field: str) -> str:
    value = getattr(view, field)
    return value if isinstance(value, str) else format_qty(value)


def _other(source: Source) -> Source:
    return "dropcopy" if source == "gateway" else "gateway"


@dataclass(slots=True, eq=False)
class _Entry:
    rec: FillRecord
    seq: int
    deadline: int
    partner: _Entry | None = None
    method: str = ""  # "exec_id" or "order": how the pair was made
    presence_break: str | None = None  # open MISSING_FROM_DROPCOPY / UNKNOWN_TO_GATEWAY break id


class _Effective(NamedTuple):
    base: FillRecord
    side: str
    qty: float
    px: float
    busted: bool
    amended: bool


class PositionDiff(NamedTuple):
    account: str
    symbol: str
    gateway_net_qty: float
    dropcopy_net_qty: float
    diff: float


class Reconciler:
    """grace_ns: how long a record waits for its counterpart before it is a presence break.
    match_on_order: for venues whose drop copy numbers executions independently of the order session;
    a record that found no ExecID partner within grace is then paired with the closest unmatched
    execution of the same order on the other side. Off by default: where ExecIDs are shared, pairing
    on the order would dress a real missing/unknown pair up as a late match.
    """

    def __init__(self, grace_ns: int, price_tolerance: float = 1e-9, match_on_order: bool = False) -> None:
        if grace_ns < 0 or price_tolerance < 0:
            raise ValueError("grace_ns and price_tolerance must be >= 0")
        self.grace_ns = grace_ns
        self.price_tolerance = price_tolerance
        self.match_on_order = match_on_order
        self._entries: dict[Source, dict[tuple[str, str], _Entry]] = {"gateway": {}, "dropcopy": {}}
        self._by_exec: dict[Source, dict[str, _Entry]] = {"gateway": {}, "dropcopy": {}}
        self._children: dict[Source, dict[str, list[_Entry]]] = {
            "gateway": defaultdict(list), "dropcopy": defaultdict(list)}
        self._orders: dict[Source, dict[tuple[str, str], list[_Entry]]] = {
            "gateway": defaultdict(list), "dropcopy": defaultdict(list)}
        self._heap: list[tuple[int, int, _Entry]] = []
        self._seq = 0
        self._breaks: dict[str, Break] = {}
        self._mismatch: dict[tuple[str, BreakType], str] = {}
        self._versions: dict[tuple[str, BreakType], int] = defaultdict(int)
        self._dups: dict[tuple[Source, str, str], int] = defaultdict(int)
        self._mirrored: dict[tuple[str, str], _Entry] = {}
        self.matched_by: dict[str, int] = {"exec_id": 0, "order": 0}
        self.resends_ignored = 0

    # ----------------------------------------------------------------- input
    def add_gateway_fill(self, rec: FillRecord) -> list[Event]:
        return self._add(rec, "gateway")

    def add_dropcopy_fill(self, rec: FillRecord) -> list[Event]:
        return self._add(rec, "dropcopy")

    def tick(self, now_ns: int) -> list[Event]:
        """Expire every grace period that ended strictly before now_ns."""
        events: list[Event] = []
        while self._heap and self._heap[0][0] < now_ns:
            deadline, _, entry = heapq.heappop(self._heap)
            if entry.partner is None and entry.presence_break is None:
                events += self._expire(entry, deadline)
        return events

    # ----------------------------------------------------------------- queries
    @property
    def matched_count(self) -> int:
        return sum(self.matched_by.values())

    def open_counts(self) -> dict[BreakType, int]:
        counts = {t: 0 for t in BreakType}
        for brk in self._breaks.values():
            if brk.is_open:
                counts[brk.type] += 1
        return counts

    def breaks(self) -> list[Break]:
        return sorted(self._breaks.values(), key=lambda b: (b.detected_ns, b.id))

    def message_counts(self) -> dict[Source, int]:
        """Accepted messages per source: first occurrences plus duplicates (resends are not counted)."""
        dups = {s: sum(n for (src, _, _), n in self._dups.items() if src == s) for s in ("gateway", "dropcopy")}
        return {s: len(self._entries[s]) + dups[s] for s in ("gateway", "dropcopy")}  # type: ignore[misc]

    def pending_counts(self) -> dict[Source, int]:
        """Unmatched records still inside their grace period: not breaks (yet)."""
        return {s: sum(1 for e in self._entries[s].values() if e.partner is None and e.presence_break is None)
                for s in ("gateway", "dropcopy")}  # type: ignore[misc]

    def unknown_fills(self) -> list[FillRecord]:
        """Drop-copy records currently mirrored into positions (open UNKNOWN_TO_GATEWAY), e.g. to re-apply
        them after a restart rebuilt positions from the gateway's own fills."""
        return [e.rec for e in sorted(self._mirrored.values(), key=lambda e: e.seq)]

    def positions(self, source: Source) -> dict[tuple[str, str], float]:
        net: dict[tuple[str, str], float] = defaultdict(float)
        roots: dict[str, None] = {}
        for entry in sorted(self._entries[source].values(), key=lambda e: e.seq):
            roots.setdefault(self._root_id(source, entry))
        for root in roots:
            eff = self._effective(self._chain(source, root))
            qty = 0.0 if eff.busted else eff.qty
            net[(eff.base.account, eff.base.symbol)] += side_sign(eff.side) * qty
        return dict(net)

    def position_differences(self) -> list[PositionDiff]:
        gw, dc = self.positions("gateway"), self.positions("dropcopy")
        rows = []
        for account, symbol in sorted(set(gw) | set(dc)):
            g, d = gw.get((account, symbol), 0.0), dc.get((account, symbol), 0.0)
            rows.append(PositionDiff(account, symbol, g, d, round(g - d, 10) + 0.0))
        return rows

    def evict_settled(self) -> list[tuple[str, str, str]]:
        """Forget what a new trading day no longer needs: fills matched on both sides with no amendment and no
        open break, and resolved breaks. The store keeps all of it (reports are recomputed from the store);
        what stays in memory is what can still change. Returns the (source, ExecID, ExecType) forgotten."""
        open_ids = {bid for bid, b in self._breaks.items() if b.is_open}
        open_roots = {root for (root, _), bid in self._mismatch.items() if bid in open_ids}
        gone: list[tuple[str, str, str]] = []
        for entry in list(self._entries["gateway"].values()):
            other = entry.partner
            if (other is None or entry.rec.exec_type != "F" or other.rec.exec_type != "F"
                    or entry.presence_break or other.presence_break or entry.rec.exec_id in open_roots
                    or self._children["gateway"].get(entry.rec.exec_id)
                    or self._children["dropcopy"].get(other.rec.exec_id)):
                continue
            for src, e in (("gateway", entry), ("dropcopy", other)):
                self._entries[src].pop(e.rec.key, None)  # type: ignore[index]
                if self._by_exec[src].get(e.rec.exec_id) is e:  # type: ignore[index]
                    del self._by_exec[src][e.rec.exec_id]  # type: ignore[index]
                for token in self._order_tokens(e.rec):
                    same = self._orders[src].get(token)  # type: ignore[index]
                    if same is not None:
                        same[:] = [x for x in same if x is not e]
                        if not same:
                            del self._orders[src][token]  # type: ignore[index]
                self._dups.pop((src, e.rec.exec_id, e.rec.exec_type), None)  # type: ignore[arg-type]
            entry.partner = other.partner = None  # no cycle left for the (frozen) collector to miss
            gone += [("gateway", entry.rec.exec_id, entry.rec.exec_type), ("dropcopy", other.rec.exec_id,
                                                                              other.rec.exec_type)]
        for bid in [bid for bid, b in self._breaks.items() if not b.is_open]:
            del self._breaks[bid]
        self._mismatch = {k: v for k, v in self._mismatch.items() if v in open_ids}
        live = [h for h in self._heap if self._entries[h[2].rec.source].get(h[2].rec.key) is h[2]]
        heapq.heapify(live)
        self._heap = live
        return gone

    # ----------------------------------------------------------------- internals
    def _add(self, rec: FillRecord, source: Source) -> list[Event]:
        if rec.source != source:
            raise ValueError(f"record from {rec.source!r} fed as {source!r}")
        events = self.tick(rec.received_ns)
        first = self._entries[source].get(rec.key)
        if first is not None:
            if rec.poss_dup and rec.same_economics(first.rec):
                self.resends_ignored += 1
                return events
            return events + self._duplicate(first, rec)
        self._seq += 1
        entry = _Entry(rec, self._seq, rec.received_ns + self.grace_ns)
        self._entries[source][rec.key] = entry
        if rec.exec_type != "H":
            self._by_exec[source].setdefault(rec.exec_id, entry)
        if rec.exec_ref_id:
            self._children[source][rec.exec_ref_id].append(entry)
        for token in self._order_tokens(rec):
            self._orders[source][token].append(entry)
        other = self._entries[_other(source)].get(rec.key)
        if other is not None and other.partner is None:
            return events + self._pair(entry, other, "exec_id", rec.received_ns)
        heapq.heappush(self._heap, (entry.deadline, entry.seq, entry))
        return events

    @staticmethod
    def _order_tokens(rec: FillRecord) -> list[tuple[str, str]]:
        tokens = []
        if rec.order_id:
            tokens.append(("O", rec.order_id))
        if rec.cl_ord_id:
            tokens.append(("C", rec.cl_ord_id))
        return tokens

    def _root_id(self, source: Source, entry: _Entry) -> str:
        seen: set[int] = set()
        node = entry
        while node.rec.exec_type != "F" and node.rec.exec_ref_id and node.seq not in seen:
            seen.add(node.seq)
            parent = self._by_exec[source].get(node.rec.exec_ref_id)
            if parent is None:
                return node.rec.exec_ref_id  # the trade it amends has not arrived (yet) on this side
            node = parent
        return node.rec.exec_id

    def _chain(self, source: Source, root_id: str) -> list[_Entry]:
        root = self._by_exec[source].get(root_id)
        chain = [root] if root is not None else []
        queue, seen_ids = [root_id], {root_id}
        while queue:
            for child in self._children[source].get(queue.pop(), ()):
                if child is root or child in chain:
                    continue
                chain.append(child)
                if child.rec.exec_type != "H" and child.rec.exec_id not in seen_ids:
                    seen_ids.add(child.rec.exec_id)
                    queue.append(child.rec.exec_id)
        return sorted(chain, key=lambda e: e.seq)

    @staticmethod
    def _effective(chain: list[_Entry]) -> _Effective:
        fs = [e for e in chain if e.rec.exec_type == "F"]
        gs = [e for e in chain if e.rec.exec_type == "G"]
        base = (fs or gs or chain)[0].rec
        side, qty, px, busted = base.side, base.last_qty, base.last_px, base.exec_type == "H"
        for e in chain:
            if e.rec is base:
                continue
            if e.rec.exec_type == "G":
                side, qty, px = e.rec.side, e.rec.last_qty, e.rec.last_px
            elif e.rec.exec_type == "H":
                busted = True
        return _Effective(base, side, qty, px, busted, len(chain) > 1)

    def _fallback_candidate(self, entry: _Entry) -> _Entry | None:
        """ExecIDs did not meet within the grace period: look for an unmatched execution of the same order
        (F) or an amendment of the counterpart trade (G/H) on the other side."""
        source, rec = entry.rec.source, entry.rec
        other = _other(source)
        if rec.exec_type == "F":
            pool = {id(e): e for t in self._order_tokens(rec) for e in self._orders[other].get(t, ())}.values()
        else:
            root = self._by_exec[source].get(self._root_id(source, entry))
            if root is None or root.partner is None:
                return None
            pool = self._chain(other, self._root_id(other, root.partner))
        cands = [e for e in pool if e.partner is None and e.rec.exec_type == rec.exec_type]
        if not cands:
            return None
        # Closest economics first (TransactTime is the venue's and identical on both copies), then oldest.
        return min(cands, key=lambda e: (sum(a != b for a, b in zip(
            (e.rec.transact_time, e.rec.side, e.rec.last_qty, e.rec.last_px),
            (rec.transact_time, rec.side, rec.last_qty, rec.last_px))), e.seq))

    def _expire(self, entry: _Entry, at_ns: int) -> list[Event]:
        cand = self._fallback_candidate(entry) if self.match_on_order else None
        if cand is not None:
            return self._pair(entry, cand, "order", at_ns)
        rec = entry.rec
        if rec.source == "gateway":
            btype, order_known = BreakType.MISSING_FROM_DROPCOPY, True
            note = f"no drop-copy copy within grace {self.grace_ns / 1e9:g}s"
        else:
            btype = BreakType.UNKNOWN_TO_GATEWAY
            tokens = self._order_tokens(rec) + ([("C", rec.orig_cl_ord_id)] if rec.orig_cl_ord_id else [])
            order_known = any(self._orders["gateway"].get(t) for t in tokens)
            note = ("order known to gateway, execution not seen by it" if order_known
                    else "order never seen by gateway")
        brk = self._new_break(f"{btype.value}:{rec.exec_id}:{rec.exec_type}", btype, at_ns, note,
                              gw=rec if rec.source == "gateway" else None,
                              dc=rec if rec.source == "dropcopy" else None)
        entry.presence_break = brk.id
        events: list[Event] = [BreakOpened(brk)]
        if rec.source == "dropcopy":
            self._mirrored[rec.key] = entry
            events.append(UnknownFill(rec, order_known, brk.id))
        return events

    def _pair(self, a: _Entry, b: _Entry, method: str, now_ns: int) -> list[Event]:
        a.partner, b.partner, a.method, b.method = b, a, method, method
        self.matched_by[method] += 1
        events: list[Event] = []
        for waited, late in ((a, b), (b, a)):
            if waited.presence_break is None:
                continue
            events.append(self._resolve(waited.presence_break, now_ns, f"{late.rec.source} copy arrived late"))
            waited.presence_break = None
            gw, dc = (waited, late) if waited.rec.source == "gateway" else (late, waited)
            delay = late.rec.received_ns - waited.rec.received_ns
            how = " (matched on OrderID/ClOrdID)" if method == "order" else ""
            brk = self._new_break(
                f"LATE_ARRIVAL:{late.rec.source}:{late.rec.exec_id}:{late.rec.exec_type}",
                BreakType.LATE_ARRIVAL, now_ns,
                f"{late.rec.source} copy {delay / 1e9:g}s after the other, grace {self.grace_ns / 1e9:g}s{how}",
                gw=gw.rec, dc=dc.rec, resolved=True)
            events.append(BreakOpened(brk))
            if waited.rec.source == "dropcopy" and self._mirrored.pop(waited.rec.key, None) is not None:
                events.append(UnknownFillCovered(waited.rec, late.rec))
        gw_entry = a if a.rec.source == "gateway" else b
        return events + self._compare(gw_entry, now_ns)

    def _compare(self, gw_entry: _Entry, now_ns: int) -> list[Event]:
        """Compare the effective trade on both sides once both have seen the same amendments; until then the
        missing amendment is a presence question for the grace period, not a mismatch."""
        gw_root_id = self._root_id("gateway", gw_entry)
        gw_root = self._by_exec["gateway"].get(gw_root_id)
        if gw_root is None or gw_root.rec.exec_type != "F" or gw_root.partner is None:
            return []
        gw_chain = self._chain("gateway", gw_root_id)
        dc_chain = self._chain("dropcopy", self._root_id("dropcopy", gw_root.partner))
        dc_set = {id(e) for e in dc_chain}
        if len(gw_chain) != len(dc_chain) or any(e.partner is None or id(e.partner) not in dc_set
                                                 for e in gw_chain):
            return []
        g, d = self._effective(gw_chain), self._effective(dc_chain)
        differs = {
            BreakType.SIDE_MISMATCH: g.side != d.side,
            BreakType.QTY_MISMATCH: abs((0.0 if g.busted else g.qty) - (0.0 if d.busted else d.qty)) > QTY_EPSILON,
            BreakType.PRICE_MISMATCH: not (g.busted and d.busted) and abs(g.px - d.px) > self.price_tolerance,
        }
        gw_view, dc_view = self._effective_view(g), self._effective_view(d)
        events: list[Event] = []
        for btype in _MISMATCH_TYPES:
            key = (gw_root_id, btype)
            open_id = self._mismatch.get(key)
            if open_id is not None:
                old = self._breaks[open_id]
                if differs[btype] and (old.gateway, old.dropcopy) == (gw_view, dc_view):
                    continue
                why = "superseded by an amendment that still disagrees" if differs[btype] else "sides now agree"
                events.append(self._resolve(open_id, now_ns, why))
                del self._mismatch[key]
            if differs[btype]:
                self._versions[key] += 1
                version = self._versions[key]
                bid = f"{btype.value}:{gw_root_id}" + (f"#{version}" if version > 1 else "")
                field = _FIELD[btype]
                note = f"{field} gateway {_show(gw_view, field)} vs drop copy {_show(dc_view, field)}"
                if g.amended or d.amended:
                    note += " (after corrections/busts)"
                if gw_root.method == "order":
                    note += " (matched on OrderID/ClOrdID)"
                brk = self._new_break(bid, btype, now_ns, note, gw=g.base, dc=d.base,
                                      gw_view=gw_view, dc_view=dc_view)
                self._mismatch[key] = bid
                events.append(BreakOpened(brk))
        return events

    @staticmethod
    def _effective_view(eff: _Effective) -> FillView:
        b = eff.base
        return FillView(b.exec_id, b.exec_type, b.order_id, b.cl_ord_id, eff.side,
                        0.0 if eff.busted else eff.qty, eff.px, b.transact_time, b.received_ns)

    def _duplicate(self, first: _Entry, rec: FillRecord) -> list[Event]:
        source = rec.source
        self._dups[(source, rec.exec_id, rec.exec_type)] += 1
        n = self._dups[(source, rec.exec_id, rec.exec_type)]
        same = rec.same_economics(first.rec)
        note = (f"ExecID repeated on {source} (occurrence {n + 1}); "
                + ("same economics, not flagged PossDup/PossResend" if same else "economics differ from the first"))
        counterpart = first.partner.rec if first.partner is not None else None
        brk = self._new_break(
            f"DUPLICATE:{source}:{rec.exec_id}:{rec.exec_type}:{n}", BreakType.DUPLICATE, rec.received_ns, note,
            gw=rec if source == "gateway" else counterpart, dc=rec if source == "dropcopy" else counterpart)
        return [BreakOpened(brk)]

    def _new_break(self, bid: str, btype: BreakType, now_ns: int, note: str, *, gw: FillRecord | None,
                   dc: FillRecord | None, gw_view: FillView | None = None, dc_view: FillView | None = None,
                   resolved: bool = False) -> Break:
        keys = gw or dc
        assert keys is not None
        brk = Break(
            id=bid, type=btype, status=BreakStatus.RESOLVED if resolved else BreakStatus.OPEN,
            trade_date=keys.trade_date, exec_id=keys.exec_id, order_id=keys.order_id, cl_ord_id=keys.cl_ord_id,
            account=keys.account, symbol=keys.symbol,
            gateway=gw_view or (FillView.of(gw) if gw else None),
            dropcopy=dc_view or (FillView.of(dc) if dc else None),
            detected_ns=now_ns, resolved_ns=now_ns if resolved else None, note=note)
        self._breaks[bid] = brk
        return brk

    def _resolve(self, bid: str, now_ns: int, why: str) -> BreakResolved:
        brk = replace(self._breaks[bid], status=BreakStatus.RESOLVED, resolved_ns=now_ns,
                      note=f"{self._breaks[bid].note}; resolved: {why}")
        self._breaks[bid] = brk
        return BreakResolved(brk)


def match_all(reconciler: Reconciler, gateway_fills: list[FillRecord], dropcopy_fills: list[FillRecord]) -> list[Event]:
    """Feed both sides in one receive-time order (gateway first on a tie, each side's own order kept):
    the single ordering used by batch reports and by a restart, so both reach the live state."""
    tagged = [(r.received_ns, 0, i, r) for i, r in enumerate(gateway_fills)]
    tagged += [(r.received_ns, 1, i, r) for i, r in enumerate(dropcopy_fills)]
    events: list[Event] = []
    for _, rank, _, rec in sorted(tagged, key=lambda t: t[:3]):
        events += reconciler.add_gateway_fill(rec) if rank == 0 else reconciler.add_dropcopy_fill(rec)
    return events

"""Live wiring of store + matcher + logging, for the code that owns the FIX sessions.

One lock serialises every call: QuickFIX delivers the order session and the drop copy on different threads,
and the matcher's outcome depends on the order records are fed in. Receive times are stamped inside the
lock so that order is also receive-time order, the order a restart replay and a batch report use.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

from gateway.recon.events import BreakOpened, BreakResolved, Event, UnknownFill, UnknownFillCovered
from gateway.recon.matcher import Reconciler, match_all
from gateway.recon.model import Break, BreakType, FillRecord, FixInput, Source, from_fix
from gateway.recon.report import FORMATS, ReconReport, reconcile_records
from gateway.recon.report import write_reports as _write_reports
from gateway.recon.store import AddResult, ReconStore

LOGGER_NAME = "fixgw.recon"
UNKNOWN_FILL_CODE = "DROPCOPY_UNKNOWN_FILL"
_NEEDS_QUOTES = frozenset(' "=')


def _kv(fields: dict[str, object]) -> str:
    # key=value on one line; values with spaces or quotes are JSON-quoted so the line stays machine-splittable
    out = []
    for k, v in fields.items():
        text = "" if v is None else str(v)
        quote = not text or any(c in text for c in _NEEDS_QUOTES)
        out.append(f"{k}={json.dumps(text) if quote else text}")
    return " ".join(out)


def _break_fields(brk: Break) -> dict[str, object]:
    return {"type": brk.type.value, "id": brk.id, "status": brk.status.value, "trade_date": brk.trade_date,
            **brk.keys(), "note": brk.note}


class ReconService:
    def __init__(self, store: ReconStore, grace_ns: int, clock: Callable[[], int] = time.time_ns,
                 price_tolerance: float = 1e-9, match_on_order: bool = False,
                 logger: logging.Logger | None = None) -> None:
        self.store = store
        self.match_on_order = match_on_order
        self.grace_ns = grace_ns
        self.price_tolerance = price_tolerance
        self._clock = clock
        self._log = logger or logging.getLogger(LOGGER_NAME)
        self._lock = threading.RLock()
        self._days: dict[str, Reconciler] = {}
        self.rejected_messages = 0

    # ------------------------------------------------------------------ input
    def on_gateway_message(self, msg: FixInput, arrived_ns: int | None = None) -> list[Event]:
        """An ExecutionReport with ExecType F/G/H received from the venue on the order session.

        arrived_ns: when the gateway received it (the event log's stamp), which dates a report that carries
        neither TransactTime, TradeDate nor SendingTime; default: now."""
        return self._on_message(msg, "gateway", arrived_ns)

    def on_dropcopy_message(self, msg: FixInput, arrived_ns: int | None = None) -> list[Event]:
        """An ExecutionReport with ExecType F/G/H received on the drop-copy session."""
        return self._on_message(msg, "dropcopy", arrived_ns)

    def _on_message(self, msg: FixInput, source: Source, arrived_ns: int | None = None) -> list[Event]:
        with self._lock:
            try:
                rec = from_fix(msg, source, self._clock(), arrived_ns)
            except ValueError as exc:
                # Never raise into QuickFIX's callback thread; the line is loud and counted instead.
                self.rejected_messages += 1
                self._log.error("recon_unusable_fill %s", _kv({"source": source, "reason": str(exc)}))
                return []
            return self.add_fill(rec)

    def add_fill(self, rec: FillRecord) -> list[Event]:
        """Persist first (a fill must survive a crash), then match; a flagged resend is dropped here."""
        with self._lock:
            # Load the day before storing the record, or the replay would already contain it.
            events = [] if rec.trade_date in self._days else self._load_day(rec.trade_date, rec.received_ns)
            if self.store.add_fill(rec) is AddResult.RESEND:
                return events
            day = self._days[rec.trade_date]
            new = day.add_gateway_fill(rec) if rec.source == "gateway" else day.add_dropcopy_fill(rec)
            self._publish(new)
            return events + new

    def tick(self) -> list[Event]:
        """Call periodically (e.g. every second): opens the breaks whose grace period has run out."""
        with self._lock:
            now = self._clock()
            events = [e for day in self._days.values() for e in day.tick(now)]
            self._publish(events)
            return events

    # ------------------------------------------------------------------ state
    def open_counts(self) -> dict[BreakType, int]:
        """Open breaks by type over the days held in memory: the Prometheus gauge values."""
        with self._lock:
            counts = {t: 0 for t in BreakType}
            for day in self._days.values():
                for t, n in day.open_counts().items():
                    counts[t] += n
            return counts

    def unknown_fills(self) -> list[FillRecord]:
        """Drop-copy fills currently mirrored into positions; re-apply them after a restart."""
        with self._lock:
            return [r for d in sorted(self._days) for r in self._days[d].unknown_fills()]

    def reconciler(self, trade_date: str) -> Reconciler:
        with self._lock:
            if trade_date not in self._days:
                self._load_day(trade_date, self._clock())
            return self._days[trade_date]

    def close_day(self, trade_date: str) -> None:
        """Forget a finished day in memory (its fills and breaks stay in the store; a late message for it
        reloads it from the store)."""
        with self._lock:
            self._days.pop(trade_date, None)

    def new_trading_day(self) -> int:
        """A trading day ended: every day in memory forgets its settled pairs (they stay in the store, marked
        so that a restart does not load them again). Returns the pairs forgotten."""
        with self._lock:
            gone = [(*k, d) for d, day in self._days.items() for k in day.evict_settled()]
            self.store.mark_settled(gone)
            return len(gone) // 2

    def rebuild(self, trade_dates: Iterable[str] | None = None) -> list[Event]:
        """After a restart: replay the stored fills of the given days (default: all in the store) and tick
        to now. Returns, logs and persists only what the break table did not already record, i.e. breaks
        that matured or resolved while the process was down. Mirrors: re-apply unknown_fills() as a whole
        (UnknownFill events are idempotent by trading day and ExecID, so also applying the returned ones is safe)."""
        with self._lock:
            now = self._clock()
            days = list(trade_dates) if trade_dates is not None else self.store.trade_dates()
            return [e for day in days for e in self._load_day(day, now)]

    def days_to_rebuild(self, today: str, recent: int = 2) -> list[str]:
        """The days a restart must replay, not the whole store: days with an open break (their gauges and
        mirrored fills), the `recent` latest days with fills (records still inside their grace period when
        the process stopped belong to them) and today. Any other day loads from the store when a message
        for it arrives."""
        with self._lock:
            stored = self.store.trade_dates()
            return sorted(set(self.store.days_with_open_breaks()) | set(stored[-recent:]) | {today})

    def _load_day(self, trade_date: str, now_ns: int) -> list[Event]:
        rec = Reconciler(self.grace_ns, self.price_tolerance, self.match_on_order)
        gw, dc = self.store.load_day(trade_date, unsettled_only=True)
        events = match_all(rec, gw, dc) + rec.tick(now_ns)
        self._days[trade_date] = rec
        stored = {b.id: b for b in self.store.load_breaks(trade_date)}
        fresh = [e for e in events if self._is_fresh(e, stored)]
        for brk in rec.breaks():
            if stored.get(brk.id) != brk:
                self.store.save_break(brk)
        self._publish(fresh, persist=False)
        return fresh

    @staticmethod
    def _is_fresh(event: Event, stored: dict[str, Break]) -> bool:
        if isinstance(event, BreakOpened):
            return event.brk.id not in stored
        if isinstance(event, BreakResolved):
            old = stored.get(event.brk.id)
            return old is None or old.is_open
        if isinstance(event, UnknownFill):
            return event.break_id not in stored
        old = stored.get(f"{BreakType.UNKNOWN_TO_GATEWAY.value}:{event.mirrored.exec_id}:{event.mirrored.exec_type}")
        return old is not None and old.is_open

    # ------------------------------------------------------------------ reports
    def report(self, trade_date: str, as_of_ns: int | None = None) -> ReconReport:
        """Recomputed from the store (not from memory), so it is the same after a restart and the same as
        the offline reconciliation of the day's logs."""
        gw, dc = self.store.load_day(trade_date)
        as_of = self._clock() if as_of_ns is None else as_of_ns
        return reconcile_records(gw, dc, self.grace_ns, as_of, trade_date, self.price_tolerance,
                                 match_on_order=self.match_on_order)

    def write_reports(self, trade_date: str, out_dir: str | Path, formats: Iterable[str] = FORMATS,
                      as_of_ns: int | None = None) -> list[Path]:
        """The end-of-day job (and `fixgw reconcile` against the live store)."""
        return _write_reports(self.report(trade_date, as_of_ns), out_dir, formats)

    # ------------------------------------------------------------------ internals
    def _publish(self, events: list[Event], persist: bool = True) -> None:
        for event in events:
            if isinstance(event, BreakOpened):
                if persist:
                    self.store.save_break(event.brk)
                level = logging.INFO if not event.brk.is_open else logging.WARNING
                self._log.log(level, "recon_break_opened %s", _kv(_break_fields(event.brk)),
                              extra={"recon": _break_fields(event.brk)})
            elif isinstance(event, BreakResolved):
                if persist:
                    self.store.save_break(event.brk)
                self._log.info("recon_break_resolved %s", _kv(_break_fields(event.brk)),
                               extra={"recon": _break_fields(event.brk)})
            elif isinstance(event, UnknownFill):
                fields = {"code": UNKNOWN_FILL_CODE if not event.order_known else "", "break_id": event.break_id,
                          "order_known": event.order_known, "exec_id": event.rec.exec_id,
                          "order_id": event.rec.order_id, "account": event.rec.account,
                          "symbol": event.rec.symbol, "side": event.rec.side, "qty": event.rec.last_qty,
                          "px": event.rec.last_px}
                self._log.warning("recon_unknown_fill %s", _kv(fields), extra={"recon": fields})
            elif isinstance(event, UnknownFillCovered):
                fields = {"exec_id": event.mirrored.exec_id, "gateway_exec_id": event.gateway_rec.exec_id}
                self._log.info("recon_unknown_fill_covered %s", _kv(fields), extra={"recon": fields})

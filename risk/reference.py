"""Plain-Python reference implementation of the pre-trade rules. Used only by tests.

Written for clarity, not speed, and deliberately independent of the kernel's layout: limits are
resolved from the RiskConfig per check, open exposure is summed over the open orders, and every
aggregate is recomputed from scratch over the instruments. The rules, their order and the warn
semantics are the same as risk/kernel.py; the property tests hold the two in agreement.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from config.risk_models import Limit, RiskConfig
from risk.decision import ACCEPTED, Decision, Outcome
from risk.state import tail_count

INF = math.inf
TICK_TOL = 1e-9


@dataclass
class _Order:
    account: int
    instrument: int
    sd: float
    qty: float
    cum: float
    price: float  # NaN for a market order
    pending: bool = False
    pending_qty: float = 0.0

    def reserved(self) -> float:
        q = max(self.qty, self.pending_qty) if self.pending else self.qty
        return max(q - self.cum, 0.0)


class _Reject(Exception):
    def __init__(self, code: str, value: float, limit: float) -> None:
        self.code, self.value, self.limit = code, float(value), float(limit)


def _lim(*xs: Limit | None) -> tuple[float, float]:
    v = [x for x in xs if x is not None]
    return (min(x.limit for x in v), min(x.warn_level for x in v)) if v else (INF, INF)


class ReferenceRisk:
    def __init__(self, cfg: RiskConfig, n_sessions: int = 16, max_orders: int = 100_000) -> None:
        self.cfg = cfg
        self.n_sessions = n_sessions
        self.max_orders = max_orders
        self.syms = [x.symbol for x in cfg.instruments]
        self.accs = [a.name for a in cfg.accounts]
        self.n_ins = len(self.syms)
        self.pos: dict[tuple[int, int], float] = {}
        self.avg: dict[tuple[int, int], float] = {}
        self.cash = [a.cash for a in cfg.accounts]
        self.base = [a.cash for a in cfg.accounts]
        self.realised = [0.0] * len(self.accs)
        self.live = [0.0] * self.n_ins
        self.last = [0.0] * self.n_ins
        self.orders: dict[int, _Order] = {}
        self._next_id = 0
        self.msg_times: list[list[int]] = [[] for _ in range(n_sessions)]
        self.ord_times: list[list[int]] = [[] for _ in self.accs]
        self.kill = {"global": set(), "account": set(), "instrument": set()}
        self.reduce = {"global": set(), "account": set(), "instrument": set()}
        lim = cfg.limits
        self.restricted = {self.syms.index(s) for s in lim.restricted if s in self.syms}
        scen = cfg.scenarios
        var_scopes = [lim.global_, *lim.accounts.values()]
        self.var_on = scen is not None and any(s.var_max or s.es_max for s in var_scopes)
        self.k_tail = tail_count(lim.settings.var_confidence, scen.shape[0]) if self.var_on else 0

    # ---------------------------------------------------------------- limits, resolved per use
    def _acc_lim(self, a: int, kind: str) -> tuple[float, float]:
        al = self.cfg.limits.accounts.get(self.accs[a])
        return _lim(getattr(self.cfg.limits.global_, kind), al and getattr(al, kind))

    def _ins_lim(self, i: int, kind: str) -> tuple[float, float]:
        il = self.cfg.limits.instruments.get(self.syms[i])
        return _lim(getattr(self.cfg.limits.global_, kind), il and getattr(il, kind))

    def _both(self, a: int, i: int, kind: str) -> tuple[float, float]:
        la, wa = self._acc_lim(a, kind)
        li, wi = self._ins_lim(i, kind)
        return min(la, li), min(wa, wi)

    def _qty_min(self, a: int, i: int) -> float:
        g = self.cfg.limits.global_.qty_min
        al = self.cfg.limits.accounts.get(self.accs[a])
        il = self.cfg.limits.instruments.get(self.syms[i])
        vals = [x.limit for x in (g, al and al.qty_min, il and il.qty_min) if x is not None]
        return max(vals) if vals else 0.0

    def _sector_lim(self, sector: str) -> tuple[float, float]:
        sl = self.cfg.limits.sectors.get(sector)
        return _lim(self.cfg.limits.global_.sector_gross_max, sl and sl.gross_max)

    # ---------------------------------------------------------------- state read-outs
    def mark(self, i: int) -> float:
        for p in (self.live[i], self.last[i], self.cfg.instruments[i].reference_price or 0.0):
            if p > 0:
                return p
        return math.nan

    def _vm(self, i: int) -> float:
        m = self.mark(i)
        return (m if m > 0 else 0.0) * self.cfg.instruments[i].multiplier

    def open_qty(self, a: int, i: int, skip: int | None = None) -> tuple[float, float]:
        ob = os_ = 0.0
        for oid, o in self.orders.items():
            if oid != skip and o.account == a and o.instrument == i:
                if o.sd > 0:
                    ob += o.reserved()
                else:
                    os_ += o.reserved()
        return ob, os_

    def legs(self, a: int, override: tuple[int, float, float] | None = None):
        """(i, pos, open buy, open sell) per instrument; override replaces one instrument's opens."""
        for i in range(self.n_ins):
            ob, os_ = self.open_qty(a, i)
            if override is not None and override[0] == i:
                ob, os_ = override[1], override[2]
            yield i, self.pos.get((a, i), 0.0), ob, os_

    def gross(self, a: int, override=None) -> float:
        return sum(max(abs(p + ob), abs(p - os_)) * self._vm(i) for i, p, ob, os_ in self.legs(a, override))

    def net(self, a: int, override=None) -> float:
        nb = sum((p + ob) * self._vm(i) for i, p, ob, os_ in self.legs(a, override))
        ns = sum((p - os_) * self._vm(i) for i, p, ob, os_ in self.legs(a, override))
        return max(abs(nb), abs(ns))

    def sector_gross(self, a: int, sector: str, override=None) -> float:
        return sum(max(abs(p + ob), abs(p - os_)) * self._vm(i) for i, p, ob, os_ in self.legs(a, override)
                   if self.cfg.instruments[i].sector == sector)

    def equity(self, a: int) -> float:
        return self.cash[a] + sum(self.pos.get((a, i), 0.0) * self._vm(i) for i in range(self.n_ins))

    def daily_pnl(self, a: int) -> float:
        return self.equity(a) - self.base[a]

    def var_es(self, a: int, override=None) -> tuple[float, float]:
        sc = self.cfg.scenarios
        assert sc is not None
        q = [(i, (p + ob - os_) * self._vm(i)) for i, p, ob, os_ in self.legs(a, override)]
        losses = []
        for s in range(sc.shape[0]):
            pnl = 0.0
            for i, v in q:
                pnl += v * float(sc[s, i])
            losses.append(-pnl)
        tail = sorted(losses, reverse=True)[: self.k_tail]
        tail.sort()
        tot = 0.0
        for x in tail:
            tot += x
        return tail[0], tot / len(tail)

    # ---------------------------------------------------------------- checks
    def _message(self, sess: int, now: int, warns: list) -> None:
        if not 0 <= sess < self.n_sessions:
            raise _Reject("CHECK_ERROR", sess, self.n_sessions)
        lim, warn = _lim(self.cfg.limits.global_.message_rate_max)
        if lim == INF:
            return
        win = self.cfg.settings.message_rate_window_ms * 1_000_000
        times = self.msg_times[sess]
        cnt = sum(1 for t in times if t > now - win) + 1
        if cnt > lim:
            raise _Reject("MESSAGE_RATE", cnt, lim)
        times.append(max([now] + times[-1:]))
        if cnt >= warn:
            warns.append(("MESSAGE_RATE", float(cnt), lim))

    def _order(self, a: int, i: int, side: int, qty: float, add_q: float, rem_q: float, px: float,
               is_mkt: bool, dup: bool, now: int, is_replace: bool, warns: list) -> None:
        if not 0 <= a < len(self.accs):
            raise _Reject("UNKNOWN_ACCOUNT", a, len(self.accs))
        if not 0 <= i < self.n_ins:
            raise _Reject("UNKNOWN_INSTRUMENT", i, self.n_ins)
        if side not in (1, 2, 5, 6):
            raise _Reject("INVALID_ORDER", side, 0)
        sd = 1.0 if side == 1 else -1.0
        st = self.cfg.settings
        if not (qty > 0 and qty <= st.max_order_qty):
            raise _Reject("INVALID_QTY", qty, st.max_order_qty)
        ins = self.cfg.instruments[i]
        if not is_mkt:
            if not (px > 0 and px <= st.max_price):
                raise _Reject("INVALID_PRICE", px, st.max_price)
            r = px / ins.tick_size
            if abs(r - round(r)) > TICK_TOL * max(1.0, r):
                raise _Reject("PRICE_TICK", px, ins.tick_size)
        if dup:
            raise _Reject("DUPLICATE_CLORDID", 1, 0)
        name, sym = self.accs[a], self.syms[i]
        if self.kill["global"]:
            raise _Reject("KILL_SWITCH_GLOBAL", 1, 0)
        if a in self.kill["account"]:
            raise _Reject("KILL_SWITCH_ACCOUNT", 1, 0)
        if i in self.kill["instrument"]:
            raise _Reject("KILL_SWITCH_INSTRUMENT", 1, 0)
        if i in self.restricted:
            raise _Reject("RESTRICTED_INSTRUMENT", 1, 0)
        allowed = self.cfg.accounts[a].allowed_instruments
        if allowed is not None and sym not in allowed:
            raise _Reject("INSTRUMENT_NOT_PERMITTED", 1, 0)

        pos = self.pos.get((a, i), 0.0)
        ob, os_ = self.open_qty(a, i)
        dq = add_q - rem_q
        ob2, os2 = (ob + dq, os_) if sd > 0 else (ob, os_ + dq)
        reducing = (pos < 0 and pos + ob2 <= 0) if sd > 0 else (pos > 0 and pos - os2 >= 0)
        if is_replace and dq <= 0:
            reducing = True
        if (self.reduce["global"] or a in self.reduce["account"] or i in self.reduce["instrument"]) and not reducing:
            raise _Reject("REDUCE_ONLY", pos, 0)

        ref = self.mark(i)
        if not ref > 0:
            raise _Reject("NO_REFERENCE_PRICE", 0, 0)
        if not is_mkt:
            dev = abs(px - ref) / ref
            lim, warn = self._ins_lim(i, "collar_pct")
            if dev > lim:
                raise _Reject("PRICE_COLLAR", dev, lim)
            if dev >= warn:
                warns.append(("PRICE_COLLAR", dev, lim))
        qmin = self._qty_min(a, i)
        if qty < qmin:
            raise _Reject("QTY_MIN", qty, qmin)
        self._limit(warns, "QTY_MAX", qty, *self._both(a, i, "qty_max"))
        notional = qty * (ref if is_mkt else px) * ins.multiplier
        self._limit(warns, "NOTIONAL_MAX", notional, *self._both(a, i, "notional_max"))

        olim, owarn = self._acc_lim(a, "order_rate_max")
        if olim < INF:
            win = st.order_rate_window_ms * 1_000_000
            cnt = sum(1 for t in self.ord_times[a] if t > now - win) + 1
            self._limit(warns, "ORDER_RATE", cnt, olim, owarn)

        ov = (i, ob2, os2)
        wc0, wc1 = max(abs(pos + ob), abs(pos - os_)), max(abs(pos + ob2), abs(pos - os2))
        self._rising(warns, "POSITION_LIMIT", wc0, wc1, *self._both(a, i, "position_max"))
        g0, g1 = self.gross(a), self.gross(a, ov)
        self._rising(warns, "GROSS_EXPOSURE", g0, g1, *self._acc_lim(a, "gross_max"))
        self._rising(warns, "NET_EXPOSURE", self.net(a), self.net(a, ov), *self._acc_lim(a, "net_max"))
        self._rising(warns, "SECTOR_EXPOSURE", self.sector_gross(a, ins.sector),
                     self.sector_gross(a, ins.sector, ov), *self._sector_lim(ins.sector))
        lim, warn = self._acc_lim(a, "leverage_max")
        eq = self.equity(a)
        if lim < INF or warn < INF:
            if eq > 0:
                l0, l1 = g0 / eq, g1 / eq
            else:
                l0, l1 = (INF if g0 > 0 else 0.0), (INF if g1 > 0 else 0.0)
            self._rising(warns, "LEVERAGE", l0, l1, lim, warn)
        loss = -(eq - self.base[a])
        lim, warn = self._acc_lim(a, "daily_loss_max")
        if loss > lim and not reducing:
            raise _Reject("DAILY_LOSS", loss, lim)
        if loss >= warn:
            warns.append(("DAILY_LOSS", loss, lim))
        if self.var_on:
            vlim, vw = self._acc_lim(a, "var_max")
            elim, ew = self._acc_lim(a, "es_max")
            if min(vlim, vw, elim, ew) < INF:
                var1, es1 = self.var_es(a, ov)
                var0, es0 = self.var_es(a)
                self._rising(warns, "VAR_LIMIT", var0, var1, vlim, vw)
                self._rising(warns, "ES_LIMIT", es0, es1, elim, ew)

    @staticmethod
    def _limit(warns: list, code: str, value: float, lim: float, warn: float) -> None:
        if value > lim:
            raise _Reject(code, value, lim)
        if value >= warn:
            warns.append((code, float(value), lim))

    @staticmethod
    def _rising(warns: list, code: str, before: float, after: float, lim: float, warn: float) -> None:
        # an order is blocked by an aggregate limit only if it takes the measure over and raises it
        if after > lim and after > before:
            raise _Reject(code, after, lim)
        if after >= warn:
            warns.append((code, float(after), lim))

    def _decide(self, fn, *args) -> Decision:
        warns: list = []
        try:
            fn(warns, *args)
        except _Reject as r:
            return Decision(Outcome.REJECT, r.code, r.value, r.limit, tuple(warns))
        return Decision(Outcome.WARN, None, 0.0, 0.0, tuple(warns)) if warns else ACCEPTED

    def check_new(self, sess: int, a: int, i: int, side: int, qty: float, price: float | None,
                  is_market: bool, duplicate: bool, now: int) -> Decision:
        px = math.nan if price is None else price

        def run(warns: list) -> None:
            self._message(sess, now, warns)
            if len(self.orders) >= self.max_orders:
                raise _Reject("CHECK_ERROR", self.max_orders, self.max_orders)
            self._order(a, i, side, qty, qty, 0.0, px, is_market, duplicate, now, False, warns)
            self._accepted(a, now)

        return self._decide(run)

    def check_replace(self, oid: int, new_qty: float, new_price: float | None, now: int, sess: int,
                      duplicate: bool = False) -> Decision:
        px = math.nan if new_price is None else new_price

        def run(warns: list) -> None:
            self._message(sess, now, warns)
            o = self.orders.get(oid)
            if o is None:
                raise _Reject("UNKNOWN_ORDER", oid, 0)
            if o.pending:
                raise _Reject("REPLACE_PENDING", oid, 0)
            if new_qty <= o.cum:
                raise _Reject("REPLACE_BELOW_FILLED", new_qty, o.cum)
            side = 1 if o.sd > 0 else 2
            self._order(o.account, o.instrument, side, new_qty, new_qty - o.cum, o.reserved(), px,
                        math.isnan(o.price), duplicate, now, True, warns)
            self._accepted(o.account, now)

        return self._decide(run)

    def _accepted(self, a: int, now: int) -> None:
        if self._acc_lim(a, "order_rate_max")[0] < INF:
            times = self.ord_times[a]
            times.append(max([now] + times[-1:]))

    def count_message(self, sess: int, now: int) -> Decision:
        return self._decide(lambda warns: self._message(sess, now, warns))

    # ---------------------------------------------------------------- lifecycle
    def _fill_position(self, a: int, i: int, sd: float, q: float, px: float) -> None:
        mult = self.cfg.instruments[i].multiplier
        pos, avg = self.pos.get((a, i), 0.0), self.avg.get((a, i), 0.0)
        self.cash[a] -= sd * q * px * mult
        npos = pos + sd * q
        if pos == 0 or (pos > 0) == (sd > 0):
            navg = (abs(pos) * avg + q * px) / abs(npos)
        else:
            closing = min(q, abs(pos))
            self.realised[a] += (1.0 if pos > 0 else -1.0) * (px - avg) * closing * mult
            navg = 0.0 if npos == 0 else (px if (npos > 0) != (pos > 0) else avg)
        self.pos[(a, i)], self.avg[(a, i)] = npos, navg

    def on_sent(self, a: int, i: int, side: int, qty: float, price: float | None) -> int:
        oid = self._next_id
        self._next_id += 1
        self.orders[oid] = _Order(a, i, 1.0 if side == 1 else -1.0, qty, 0.0,
                                  math.nan if price is None else price)
        return oid

    def on_fill(self, oid: int, q: float, px: float) -> bool:
        o = self.orders[oid]
        o.cum += q
        self._fill_position(o.account, o.instrument, o.sd, q, px)
        self.last[o.instrument] = px
        if o.reserved() <= 0 and not o.pending:
            del self.orders[oid]
            return True
        return False

    def on_cancel(self, oid: int) -> bool:
        del self.orders[oid]
        return True

    def on_replace_pending(self, oid: int, q: float, px: float | None) -> bool:
        o = self.orders[oid]
        o.pending, o.pending_qty = True, q
        return False

    def _finish_replace(self, oid: int) -> bool:
        if self.orders[oid].reserved() <= 0:
            del self.orders[oid]
            return True
        return False

    def on_replaced(self, oid: int, q: float, px: float | None) -> bool:
        o = self.orders[oid]
        o.pending, o.qty, o.price = False, q, (math.nan if px is None else px)
        return self._finish_replace(oid)

    def on_replace_rejected(self, oid: int) -> bool:
        self.orders[oid].pending = False
        return self._finish_replace(oid)

    def on_external_fill(self, a: int, i: int, side: int, q: float, px: float) -> None:
        self._fill_position(a, i, 1.0 if side == 1 else -1.0, q, px)
        self.last[i] = px

    def on_bust(self, a: int, i: int, side: int, q: float, px: float) -> None:
        self._fill_position(a, i, -1.0 if side == 1 else 1.0, q, px)

    def set_reference_price(self, i: int, px: float) -> None:
        self.live[i] = px

    def set_kill(self, scope: str, idx: int, on: bool) -> None:
        (self.kill[scope].add if on else self.kill[scope].discard)(idx if scope != "global" else 0)

    def set_reduce_only(self, scope: str, idx: int, on: bool) -> None:
        (self.reduce[scope].add if on else self.reduce[scope].discard)(idx if scope != "global" else 0)

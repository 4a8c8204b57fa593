"""Numba kernels: every pre-trade check and every state transition, over two flat buffers.

Why one module: numba's on-disk cache (cache=True) is invalidated only when the *defining* file
changes. Constants and helper functions imported from another file would be frozen into a stale
cache when that other file changes, so everything a kernel depends on lives here: reason ids, the
buffer layout and all jitted code. Python-side modules import these constants from here.

Why two flat buffers: dispatch cost grows with the number of array arguments (~60 ns each,
measured), so all float state lives in one float64 buffer and all integer state in one int64
buffer; the header of the int buffer holds the offset and shape of each section. Kernels take
(f, ib) and address rows by offset (``base + row * width + column``): passing tuples of array views
between compiled functions cost ~350 ns per call and a numba reshape ~30 ns (both measured).

Kernels are compiled without numba's reference-counting runtime (_nrt=False): they never
allocate, and the NRT_incref/NRT_decref calls it emits around array arguments cost ~50 ns per
check (measured). Callers pass every buffer in.

Float comparisons against limits are written ``not (value <= limit)`` so that a NaN measure rejects
(fail closed) instead of silently passing.
"""
from __future__ import annotations

import numpy as np
from numba import njit

# ---------------------------------------------------------------- reason ids (stable, never renumber)
CHECK_ERROR = 1
MESSAGE_RATE = 2
UNKNOWN_ACCOUNT = 3
UNKNOWN_INSTRUMENT = 4
INVALID_ORDER = 5
INVALID_QTY = 6
INVALID_PRICE = 7
PRICE_TICK = 8
DUPLICATE_CLORDID = 9
KILL_SWITCH_GLOBAL = 10
KILL_SWITCH_ACCOUNT = 11
KILL_SWITCH_INSTRUMENT = 12
RESTRICTED_INSTRUMENT = 13
INSTRUMENT_NOT_PERMITTED = 14
REDUCE_ONLY = 15
NO_REFERENCE_PRICE = 16
PRICE_COLLAR = 17
QTY_MIN = 18
QTY_MAX = 19
NOTIONAL_MAX = 20
ORDER_RATE = 21
POSITION_LIMIT = 22
GROSS_EXPOSURE = 23
NET_EXPOSURE = 24
SECTOR_EXPOSURE = 25
LEVERAGE = 26
DAILY_LOSS = 27
VAR_LIMIT = 28
ES_LIMIT = 29
UNKNOWN_ORDER = 30
REPLACE_PENDING = 31
REPLACE_BELOW_FILLED = 32

# ---------------------------------------------------------------- int-buffer header
H_NACC, H_NINS, H_NSEC, H_NSESS, H_MAXORD, H_NSCEN, H_KTAIL = 0, 1, 2, 3, 4, 5, 6
H_MSG_WIN, H_ORD_WIN, H_VAR_ON = 7, 8, 9
H_FV = 16  # (start, rows, cols) per float view
H_IV = 56  # (start, rows, cols) per int view
HDR_LEN = 96

# float views
FV_INS, FV_ACC, FV_SEC, FV_ACCSEC, FV_LEG, FV_ORD, FV_MISC, FV_SCEN, FV_BOOK, FV_HEAP, FV_OUT = range(11)
N_FV = 11
# int views
IV_GFLAGS, IV_ACCF, IV_INSF, IV_ALLOW, IV_RS, IV_RA, IV_FREE = range(7)
N_IV = 7

# instrument row: reference data, price chain, then limits folded with the global ones (limit, warn)
I_MULT, I_TICK, I_REF_CFG, I_REF_LIVE, I_LAST_FILL, I_MARK, I_SECTOR = 0, 1, 2, 3, 4, 5, 6
I_QTY_MIN, I_QTY_MAX, I_NOTIONAL, I_COLLAR, I_POS = 7, 8, 10, 12, 14
NI = 16

# account row: money and aggregates, then limits folded with the global ones (limit, warn)
A_CASH, A_PNL_BASE, A_REALISED, A_GROSS, A_NETBUY, A_NETSELL, A_MTM = 0, 1, 2, 3, 4, 5, 6
A_QTY_MIN, A_QTY_MAX, A_NOTIONAL, A_POS, A_GROSS_MAX, A_NET_MAX = 7, 8, 10, 12, 14, 16
A_LEV, A_LOSS, A_VAR, A_ES, A_ORATE = 18, 20, 22, 24, 26
NA = 28

# sector row (limit, warn) of the per-account sector gross budget
NS = 2

# leg row, one per (account, instrument): state, then cached contributions to the aggregates so
# that an update can subtract exactly what it once added
L_POS, L_AVG, L_OB, L_OS, L_CG, L_CNB, L_CNS, L_CMTM, L_CVAR = range(9)
NL = 9

# order slot row
O_ACC, O_INS, O_SIDE, O_QTY, O_CUM, O_PX, O_STATE, O_PQTY, O_PPX, O_SESS = range(10)
NO = 10
ST_FREE, ST_PENDING_NEW, ST_LIVE, ST_PENDING_REPLACE = 0, 1, 2, 3

# misc row
M_MSG_LIM, M_MSG_WARN, M_QTY_SANE, M_PX_SANE = 0, 1, 2, 3
NM = 4

# out row: code, value, limit, n_warnings, then (code, value, limit) per warning
OUT_W0 = 4
MAX_WARN = 20
NOUT = OUT_W0 + 3 * MAX_WARN

# lifecycle status
S_OK, S_DONE, S_STALE, S_INVALID = 0, 1, -1, -2

# replay event kinds
EV_NEW, EV_REPLACE, EV_CANCEL, EV_FILL, EV_PRICE, EV_MSG = 0, 1, 2, 3, 4, 5

INF = np.inf
TICK_TOL = 1e-9


# ---------------------------------------------------------------- addressing
@njit(cache=True, _nrt=False, error_model="numpy")
def fo(ib, k):
    """Offset of float section k in f."""
    return ib[H_FV + 3 * k]


@njit(cache=True, _nrt=False, error_model="numpy")
def io(ib, k):
    """Offset of int section k in ib."""
    return ib[H_IV + 3 * k]


@njit(cache=True, _nrt=False, error_model="numpy")
def iwidth(ib, k):
    return ib[H_IV + 3 * k + 2]


@njit(cache=True, _nrt=False, error_model="numpy")
def _leg(ib, a, i):
    return fo(ib, FV_LEG) + (a * ib[H_NINS] + i) * NL


# ---------------------------------------------------------------- sliding-window rings
# A ring at ib[r]: [count, head, t_0 .. t_{cap-1}]; timestamps are kept non-decreasing, so "at
# least k messages in the window" is one load: is the k-th most recent inside it? The exact count
# (binary search) is only needed for the figures of a reject or a warning.
@njit(cache=True, _nrt=False, error_model="numpy")
def _kth_recent(ib, r, cap, k):
    j = ib[r + 1] - k
    if j < 0:
        j += cap
    return ib[r + 2 + j]


@njit(cache=True, _nrt=False, error_model="numpy")
def ring_has(ib, r, cap, k, now, win):
    """True if at least k timestamps lie in (now - win, now]."""
    if k <= 0:
        return True
    if k > ib[r]:
        return False
    return _kth_recent(ib, r, cap, k) > now - win


@njit(cache=True, _nrt=False, error_model="numpy")
def ring_count(ib, r, cap, now, win):
    lo = 0
    hi = ib[r]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _kth_recent(ib, r, cap, mid) > now - win:
            lo = mid
        else:
            hi = mid - 1
    return lo


@njit(cache=True, _nrt=False, error_model="numpy")
def ring_push(ib, r, cap, now):
    head = ib[r + 1]
    t = now
    if ib[r] > 0:
        last = _kth_recent(ib, r, cap, 1)
        if last > t:
            t = last  # a clock step backwards must not unsort the ring
    ib[r + 2 + head] = t
    head += 1
    ib[r + 1] = 0 if head == cap else head
    if ib[r] < cap:
        ib[r] += 1


@njit(cache=True, _nrt=False, error_model="numpy")
def _rate(ib, r, cap, now, win, lim, warn):
    """Throttle test for one more message: 0 pass, 1 warn, 2 reject (limit and warn are counts)."""
    if ring_has(ib, r, cap, np.int64(lim), now, win):
        return 2
    if warn < INF and ring_has(ib, r, cap, np.int64(np.ceil(warn)) - 1, now, win):
        return 1
    return 0


# ---------------------------------------------------------------- out row
@njit(cache=True, _nrt=False, error_model="numpy")
def _rej(f, ib, code, value, limit, nw):
    o = fo(ib, FV_OUT)
    f[o] = code
    f[o + 1] = value
    f[o + 2] = limit
    f[o + 3] = nw
    return code


@njit(cache=True, _nrt=False, error_model="numpy")
def _warn(f, ib, nw, code, value, limit):
    if nw < MAX_WARN:
        j = fo(ib, FV_OUT) + OUT_W0 + 3 * nw
        f[j] = code
        f[j + 1] = value
        f[j + 2] = limit
        return nw + 1
    return nw


# ---------------------------------------------------------------- VaR / ES
@njit(cache=True, _nrt=False, error_model="numpy")
def var_es(f, b, c, dv, h, n_scen, k):
    """VaR = k-th largest scenario loss, ES = mean of the k largest, of the book f[b:b+n] plus
    dv times the return column f[c:c+n].

    A size-k min-heap at f[h:] keeps the tail in one pass without allocating; the tail is then
    sorted ascending so the ES sum has a fixed order (the reference sums in the same order)."""
    n = 0
    for s in range(n_scen):
        loss = -(f[b + s] + dv * f[c + s])
        if n < k:
            j = n
            f[h + j] = loss
            n += 1
            while j > 0:
                p = (j - 1) // 2
                if f[h + p] > f[h + j]:
                    f[h + p], f[h + j] = f[h + j], f[h + p]
                    j = p
                else:
                    break
        elif loss > f[h]:
            f[h] = loss
            j = 0
            while True:
                l = 2 * j + 1
                if l >= k:
                    break
                m = l
                if l + 1 < k and f[h + l + 1] < f[h + l]:
                    m = l + 1
                if f[h + m] < f[h + j]:
                    f[h + m], f[h + j] = f[h + j], f[h + m]
                    j = m
                else:
                    break
    for a in range(1, n):
        x = f[h + a]
        q = a - 1
        while q >= 0 and f[h + q] > x:
            f[h + q + 1] = f[h + q]
            q -= 1
        f[h + q + 1] = x
    tot = 0.0
    for a in range(n):
        tot += f[h + a]
    return f[h], tot / n


# ---------------------------------------------------------------- checks
@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def _message_rate(f, ib, sess, now):
    """Counts the message if admitted; returns (code, n_warnings)."""
    if sess < 0 or sess >= ib[H_NSESS]:
        return _rej(f, ib, CHECK_ERROR, sess, ib[H_NSESS], 0), 0
    m = fo(ib, FV_MISC)
    lim = f[m + M_MSG_LIM]
    nw = 0
    if lim < INF:
        cap = iwidth(ib, IV_RS) - 2
        r = io(ib, IV_RS) + sess * (cap + 2)
        win = ib[H_MSG_WIN]
        t = _rate(ib, r, cap, now, win, lim, f[m + M_MSG_WARN])
        if t == 2:
            return _rej(f, ib, MESSAGE_RATE, ring_count(ib, r, cap, now, win) + 1.0, lim, 0), 0
        ring_push(ib, r, cap, now)
        if t == 1:
            nw = _warn(f, ib, nw, MESSAGE_RATE, ring_count(ib, r, cap, now, win), lim)
    return 0, nw


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def _check_order(f, ib, a, i, side, qty, add_q, rem_q, px, is_mkt, dup, now, is_replace, nw):
    """Every order rule, first failure wins, in a fixed order (determinism).

    add_q/rem_q: quantity this order adds to / removes from the open worst case on its side
    (a replace removes the original's leaves and adds the replacement's: judged on the change).
    Limits on aggregates reject only if the order takes the measure over the limit *and* raises it,
    so an order that lowers an over-limit measure (e.g. after a price move) still passes."""
    m = fo(ib, FV_MISC)
    n_ins = ib[H_NINS]
    if a < 0 or a >= ib[H_NACC]:
        return _rej(f, ib, UNKNOWN_ACCOUNT, a, ib[H_NACC], nw)
    if i < 0 or i >= n_ins:
        return _rej(f, ib, UNKNOWN_INSTRUMENT, i, n_ins, nw)
    if side == 1:
        sd = 1.0
    elif side == 2 or side == 5 or side == 6:
        sd = -1.0
    else:
        return _rej(f, ib, INVALID_ORDER, side, 0.0, nw)
    qsane = f[m + M_QTY_SANE]
    if not (qty > 0.0 and qty <= qsane):
        return _rej(f, ib, INVALID_QTY, qty, qsane, nw)
    ins = fo(ib, FV_INS) + i * NI
    acc = fo(ib, FV_ACC) + a * NA
    if not is_mkt:
        psane = f[m + M_PX_SANE]
        if not (px > 0.0 and px <= psane):
            return _rej(f, ib, INVALID_PRICE, px, psane, nw)
        tick = f[ins + I_TICK]
        r = px / tick
        if abs(r - np.round(r)) > TICK_TOL * max(1.0, r):
            return _rej(f, ib, PRICE_TICK, px, tick, nw)
    if dup:
        return _rej(f, ib, DUPLICATE_CLORDID, 1.0, 0.0, nw)
    gf = io(ib, IV_GFLAGS)
    accf = io(ib, IV_ACCF) + a * 2
    insf = io(ib, IV_INSF) + i * 3
    if ib[gf] != 0:
        return _rej(f, ib, KILL_SWITCH_GLOBAL, 1.0, 0.0, nw)
    if ib[accf] != 0:
        return _rej(f, ib, KILL_SWITCH_ACCOUNT, 1.0, 0.0, nw)
    if ib[insf] != 0:
        return _rej(f, ib, KILL_SWITCH_INSTRUMENT, 1.0, 0.0, nw)
    if ib[insf + 2] != 0:
        return _rej(f, ib, RESTRICTED_INSTRUMENT, 1.0, 0.0, nw)
    if ib[io(ib, IV_ALLOW) + a * n_ins + i] == 0:
        return _rej(f, ib, INSTRUMENT_NOT_PERMITTED, 1.0, 0.0, nw)

    leg = _leg(ib, a, i)
    pos = f[leg + L_POS]
    ob = f[leg + L_OB]
    os_ = f[leg + L_OS]
    dq = add_q - rem_q
    ob2 = ob
    os2 = os_
    if sd > 0:
        ob2 = ob + dq
        reducing = pos < 0.0 and pos + ob2 <= 0.0
    else:
        os2 = os_ + dq
        reducing = pos > 0.0 and pos - os2 >= 0.0
    if is_replace and dq <= 0.0:
        reducing = True  # shrinking a working order never adds risk
    if (ib[gf + 1] != 0 or ib[accf + 1] != 0 or ib[insf + 1] != 0) and not reducing:
        return _rej(f, ib, REDUCE_ONLY, pos, 0.0, nw)

    ref = f[ins + I_MARK]
    if not (ref > 0.0):
        return _rej(f, ib, NO_REFERENCE_PRICE, 0.0, 0.0, nw)
    if not is_mkt:
        dev = abs(px - ref) / ref
        lim = f[ins + I_COLLAR]
        if not (dev <= lim):
            return _rej(f, ib, PRICE_COLLAR, dev, lim, nw)
        if dev >= f[ins + I_COLLAR + 1]:
            nw = _warn(f, ib, nw, PRICE_COLLAR, dev, lim)

    lim = max(f[acc + A_QTY_MIN], f[ins + I_QTY_MIN])
    if not (qty >= lim):
        return _rej(f, ib, QTY_MIN, qty, lim, nw)
    lim = min(f[acc + A_QTY_MAX], f[ins + I_QTY_MAX])
    if not (qty <= lim):
        return _rej(f, ib, QTY_MAX, qty, lim, nw)
    if qty >= min(f[acc + A_QTY_MAX + 1], f[ins + I_QTY_MAX + 1]):
        nw = _warn(f, ib, nw, QTY_MAX, qty, lim)
    mult = f[ins + I_MULT]
    notional = qty * (ref if is_mkt else px) * mult
    lim = min(f[acc + A_NOTIONAL], f[ins + I_NOTIONAL])
    if not (notional <= lim):
        return _rej(f, ib, NOTIONAL_MAX, notional, lim, nw)
    if notional >= min(f[acc + A_NOTIONAL + 1], f[ins + I_NOTIONAL + 1]):
        nw = _warn(f, ib, nw, NOTIONAL_MAX, notional, lim)

    olim = f[acc + A_ORATE]
    rcap = iwidth(ib, IV_RA) - 2
    ring_a = io(ib, IV_RA) + a * (rcap + 2)
    if olim < INF:
        win = ib[H_ORD_WIN]
        t = _rate(ib, ring_a, rcap, now, win, olim, f[acc + A_ORATE + 1])
        if t == 2:
            return _rej(f, ib, ORDER_RATE, ring_count(ib, ring_a, rcap, now, win) + 1.0, olim, nw)
        if t == 1:
            nw = _warn(f, ib, nw, ORDER_RATE, ring_count(ib, ring_a, rcap, now, win) + 1.0, olim)

    wc0 = max(abs(pos + ob), abs(pos - os_))
    wc1 = max(abs(pos + ob2), abs(pos - os2))
    lim = min(f[acc + A_POS], f[ins + I_POS])
    if not (wc1 <= lim or wc1 <= wc0):
        return _rej(f, ib, POSITION_LIMIT, wc1, lim, nw)
    if wc1 >= min(f[acc + A_POS + 1], f[ins + I_POS + 1]):
        nw = _warn(f, ib, nw, POSITION_LIMIT, wc1, lim)

    vm = ref * mult
    dg = wc1 * vm - f[leg + L_CG]
    g0 = f[acc + A_GROSS]
    g1 = g0 + dg
    lim = f[acc + A_GROSS_MAX]
    if not (g1 <= lim or g1 <= g0):
        return _rej(f, ib, GROSS_EXPOSURE, g1, lim, nw)
    if g1 >= f[acc + A_GROSS_MAX + 1]:
        nw = _warn(f, ib, nw, GROSS_EXPOSURE, g1, lim)

    nb0 = f[acc + A_NETBUY]
    ns0 = f[acc + A_NETSELL]
    nb1 = nb0 + ((pos + ob2) * vm - f[leg + L_CNB])
    ns1 = ns0 + ((pos - os2) * vm - f[leg + L_CNS])
    n0 = max(abs(nb0), abs(ns0))
    n1 = max(abs(nb1), abs(ns1))
    lim = f[acc + A_NET_MAX]
    if not (n1 <= lim or n1 <= n0):
        return _rej(f, ib, NET_EXPOSURE, n1, lim, nw)
    if n1 >= f[acc + A_NET_MAX + 1]:
        nw = _warn(f, ib, nw, NET_EXPOSURE, n1, lim)

    sec = np.int64(f[ins + I_SECTOR])
    s0 = f[fo(ib, FV_ACCSEC) + a * ib[H_NSEC] + sec]
    s1 = s0 + dg
    so = fo(ib, FV_SEC) + sec * NS
    lim = f[so]
    if not (s1 <= lim or s1 <= s0):
        return _rej(f, ib, SECTOR_EXPOSURE, s1, lim, nw)
    if s1 >= f[so + 1]:
        nw = _warn(f, ib, nw, SECTOR_EXPOSURE, s1, lim)

    lim = f[acc + A_LEV]
    wlim = f[acc + A_LEV + 1]
    equity = f[acc + A_CASH] + f[acc + A_MTM]
    if lim < INF or wlim < INF:
        if equity > 0.0:
            l1 = g1 / equity
        else:  # no equity: any exposure is infinite leverage
            l1 = INF if g1 > 0.0 else 0.0
        if not (l1 <= lim):
            if equity > 0.0:
                l0 = g0 / equity
            else:
                l0 = INF if g0 > 0.0 else 0.0
            if not (l1 <= l0):
                return _rej(f, ib, LEVERAGE, l1, lim, nw)
        if l1 >= wlim:
            nw = _warn(f, ib, nw, LEVERAGE, l1, lim)

    loss = -(equity - f[acc + A_PNL_BASE])
    lim = f[acc + A_LOSS]
    if not (loss <= lim) and not reducing:
        return _rej(f, ib, DAILY_LOSS, loss, lim, nw)
    if loss >= f[acc + A_LOSS + 1]:
        nw = _warn(f, ib, nw, DAILY_LOSS, loss, lim)

    if ib[H_VAR_ON] != 0:
        vlim = f[acc + A_VAR]
        vw = f[acc + A_VAR + 1]
        elim = f[acc + A_ES]
        ew = f[acc + A_ES + 1]
        if vlim < INF or vw < INF or elim < INF or ew < INF:
            nsc = ib[H_NSCEN]
            book = fo(ib, FV_BOOK) + a * nsc
            col = fo(ib, FV_SCEN) + i * nsc
            heap = fo(ib, FV_HEAP)
            k = ib[H_KTAIL]
            var1, es1 = var_es(f, book, col, sd * dq * vm, heap, nsc, k)
            have0 = False
            var0 = 0.0
            es0 = 0.0
            if not (var1 <= vlim and es1 <= elim):
                var0, es0 = var_es(f, book, col, 0.0, heap, nsc, k)
                have0 = True
            if have0 and not (var1 <= vlim or var1 <= var0):
                return _rej(f, ib, VAR_LIMIT, var1, vlim, nw)
            if var1 >= vw:
                nw = _warn(f, ib, nw, VAR_LIMIT, var1, vlim)
            if have0 and not (es1 <= elim or es1 <= es0):
                return _rej(f, ib, ES_LIMIT, es1, elim, nw)
            if es1 >= ew:
                nw = _warn(f, ib, nw, ES_LIMIT, es1, elim)

    if olim < INF:
        ring_push(ib, ring_a, rcap, now)
    o = fo(ib, FV_OUT)
    f[o] = 0.0
    f[o + 3] = nw
    return -nw


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def check_new(f, ib, sess, a, i, side, qty, px, is_mkt, dup, now):
    """In-line entry: returns 0 accept, -n accept with n warnings, >0 reject code (see out row)."""
    code, nw = _message_rate(f, ib, sess, now)
    if code != 0:
        return code
    if ib[io(ib, IV_FREE)] == 0:  # every order slot is in use: the order could not be tracked
        return _rej(f, ib, CHECK_ERROR, ib[H_MAXORD], ib[H_MAXORD], nw)
    return _check_order(f, ib, a, i, side, qty, qty, 0.0, px, is_mkt, dup, now, False, nw)


@njit(cache=True, _nrt=False, error_model="numpy")
def _reserved(f, o):
    """Open quantity an order slot holds against its side (0 for a free slot). While a replace is
    pending the order may fill at either size, so it holds the larger."""
    st = f[o + O_STATE]
    if st == ST_FREE:
        return 0.0
    q = f[o + O_QTY]
    if st == ST_PENDING_REPLACE and f[o + O_PQTY] > q:
        q = f[o + O_PQTY]
    r = q - f[o + O_CUM]
    return r if r > 0.0 else 0.0


@njit(cache=True, _nrt=False, error_model="numpy")
def check_replace(f, ib, sess, slot, new_qty, new_px, dup, now):
    code, nw = _message_rate(f, ib, sess, now)
    if code != 0:
        return code
    if slot < 0 or slot >= ib[H_MAXORD]:
        return _rej(f, ib, UNKNOWN_ORDER, slot, 0.0, nw)
    o = fo(ib, FV_ORD) + slot * NO
    st = f[o + O_STATE]
    if st == ST_FREE:
        return _rej(f, ib, UNKNOWN_ORDER, slot, 0.0, nw)
    if st == ST_PENDING_REPLACE:
        return _rej(f, ib, REPLACE_PENDING, slot, 0.0, nw)
    cum = f[o + O_CUM]
    if new_qty == new_qty and new_qty <= cum:
        return _rej(f, ib, REPLACE_BELOW_FILLED, new_qty, cum, nw)
    side = 1 if f[o + O_SIDE] > 0 else 2
    is_mkt = f[o + O_PX] != f[o + O_PX]
    return _check_order(f, ib, np.int64(f[o + O_ACC]), np.int64(f[o + O_INS]), side, new_qty,
                        new_qty - cum, _reserved(f, o), new_px, is_mkt, dup, now, True, nw)


@njit(cache=True, _nrt=False, error_model="numpy")
def count_message(f, ib, sess, now):
    code, nw = _message_rate(f, ib, sess, now)
    if code == 0:
        o = fo(ib, FV_OUT)
        f[o] = 0.0
        f[o + 3] = nw
        return -nw
    return code


# ---------------------------------------------------------------- state transitions
@njit(cache=True, _nrt=False, error_model="numpy")
def _mark_of(f, ins):
    """Reference-price fallback chain: live market data, then last fill, then configured."""
    if f[ins + I_REF_LIVE] > 0.0:
        return f[ins + I_REF_LIVE]
    if f[ins + I_LAST_FILL] > 0.0:
        return f[ins + I_LAST_FILL]
    if f[ins + I_REF_CFG] > 0.0:
        return f[ins + I_REF_CFG]
    return np.nan


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def _set_leg(f, ib, a, i, pos, avg, ob, os_):
    """Write a leg and move every aggregate by exactly (new contribution - cached old one)."""
    ins = fo(ib, FV_INS) + i * NI
    acc = fo(ib, FV_ACC) + a * NA
    leg = _leg(ib, a, i)
    if ob < 1e-9:
        ob = 0.0  # fractional quantities must not leave a negative dust reservation
    if os_ < 1e-9:
        os_ = 0.0
    mk = f[ins + I_MARK]
    if not (mk > 0.0):
        mk = 0.0  # only a leg with no position and no orders can lack a price
    vm = mk * f[ins + I_MULT]
    cg = max(abs(pos + ob), abs(pos - os_)) * vm
    cnb = (pos + ob) * vm
    cns = (pos - os_) * vm
    cmtm = pos * vm
    cvar = (pos + ob - os_) * vm
    dg = cg - f[leg + L_CG]
    f[acc + A_GROSS] += dg
    f[acc + A_NETBUY] += cnb - f[leg + L_CNB]
    f[acc + A_NETSELL] += cns - f[leg + L_CNS]
    f[acc + A_MTM] += cmtm - f[leg + L_CMTM]
    f[fo(ib, FV_ACCSEC) + a * ib[H_NSEC] + np.int64(f[ins + I_SECTOR])] += dg
    if ib[H_VAR_ON] != 0:
        d = cvar - f[leg + L_CVAR]
        if d != 0.0:
            nsc = ib[H_NSCEN]
            book = fo(ib, FV_BOOK) + a * nsc
            col = fo(ib, FV_SCEN) + i * nsc
            for s in range(nsc):
                f[book + s] += d * f[col + s]
    f[leg + L_POS] = pos
    f[leg + L_AVG] = avg
    f[leg + L_OB] = ob
    f[leg + L_OS] = os_
    f[leg + L_CG] = cg
    f[leg + L_CNB] = cnb
    f[leg + L_CNS] = cns
    f[leg + L_CMTM] = cmtm
    f[leg + L_CVAR] = cvar


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def _refresh_mark(f, ib, i):
    ins = fo(ib, FV_INS) + i * NI
    old = f[ins + I_MARK]
    new = _mark_of(f, ins)
    if new == old or (new != new and old != old):
        return
    f[ins + I_MARK] = new
    for a in range(ib[H_NACC]):
        leg = _leg(ib, a, i)
        if f[leg + L_POS] != 0.0 or f[leg + L_OB] != 0.0 or f[leg + L_OS] != 0.0 or f[leg + L_CG] != 0.0:
            _set_leg(f, ib, a, i, f[leg + L_POS], f[leg + L_AVG], f[leg + L_OB], f[leg + L_OS])


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def _apply_fill(f, ib, a, i, sd, q, px):
    """Average-cost position update; returns (position, average cost). Cash moves by the trade."""
    acc = fo(ib, FV_ACC) + a * NA
    leg = _leg(ib, a, i)
    mult = f[fo(ib, FV_INS) + i * NI + I_MULT]
    pos = f[leg + L_POS]
    avg = f[leg + L_AVG]
    f[acc + A_CASH] -= sd * q * px * mult
    npos = pos + sd * q
    if pos == 0.0 or (pos > 0.0) == (sd > 0.0):
        navg = (abs(pos) * avg + q * px) / abs(npos)
    else:
        closing = min(q, abs(pos))
        sgn = 1.0 if pos > 0.0 else -1.0
        f[acc + A_REALISED] += sgn * (px - avg) * closing * mult
        if npos == 0.0:
            navg = 0.0
        elif (npos > 0.0) != (pos > 0.0):
            navg = px
        else:
            navg = avg
    return npos, navg


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def _reserve(f, ib, a, i, sd, d):
    leg = _leg(ib, a, i)
    ob = f[leg + L_OB]
    os_ = f[leg + L_OS]
    if sd > 0:
        ob += d
    else:
        os_ += d
    _set_leg(f, ib, a, i, f[leg + L_POS], f[leg + L_AVG], ob, os_)


@njit(cache=True, _nrt=False, error_model="numpy")
def _free_slot(f, ib, slot):
    f[fo(ib, FV_ORD) + slot * NO + O_STATE] = ST_FREE
    fr = io(ib, IV_FREE)
    top = ib[fr]
    ib[fr + 1 + top] = slot
    ib[fr] = top + 1


@njit(cache=True, _nrt=False, error_model="numpy")
def _live_slot(f, ib, slot):
    return 0 <= slot < ib[H_MAXORD] and f[fo(ib, FV_ORD) + slot * NO + O_STATE] != ST_FREE


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def on_sent(f, ib, sess, a, i, side, qty, px):
    """Take a slot for an accepted order and reserve its worst-case open quantity."""
    if a < 0 or a >= ib[H_NACC] or i < 0 or i >= ib[H_NINS]:
        return S_INVALID
    if side != 1 and side != 2 and side != 5 and side != 6:
        return S_INVALID
    if not (qty > 0.0 and qty < INF):
        return S_INVALID
    fr = io(ib, IV_FREE)
    top = ib[fr]
    if top == 0:
        return S_STALE
    slot = ib[fr + top]
    ib[fr] = top - 1
    o = fo(ib, FV_ORD) + slot * NO
    sd = 1.0 if side == 1 else -1.0
    f[o + O_ACC] = a
    f[o + O_INS] = i
    f[o + O_SIDE] = sd
    f[o + O_QTY] = qty
    f[o + O_CUM] = 0.0
    f[o + O_PX] = px
    f[o + O_STATE] = ST_PENDING_NEW
    f[o + O_PQTY] = 0.0
    f[o + O_PPX] = np.nan
    f[o + O_SESS] = sess
    _reserve(f, ib, a, i, sd, qty)
    return slot


@njit(cache=True, _nrt=False, error_model="numpy", inline="always")
def slot_transition(f, ib, slot, kind, q, px):
    """kind: 0 fill, 1 cancel / venue reject, 2 replace pending, 3 replaced, 4 replace rejected.
    Each recomputes the slot's reservation and moves the leg by the difference."""
    if not _live_slot(f, ib, slot):
        return S_STALE
    o = fo(ib, FV_ORD) + slot * NO
    a = np.int64(f[o + O_ACC])
    i = np.int64(f[o + O_INS])
    sd = f[o + O_SIDE]
    r0 = _reserved(f, o)
    if kind == 0:
        if not (q > 0.0 and q < INF and px > 0.0 and px < INF):
            return S_INVALID
        f[o + O_CUM] += q
        r1 = _reserved(f, o)
        pos, avg = _apply_fill(f, ib, a, i, sd, q, px)
        leg = _leg(ib, a, i)
        ob = f[leg + L_OB]
        os_ = f[leg + L_OS]
        if sd > 0:
            ob += r1 - r0
        else:
            os_ += r1 - r0
        _set_leg(f, ib, a, i, pos, avg, ob, os_)
        f[fo(ib, FV_INS) + i * NI + I_LAST_FILL] = px
        _refresh_mark(f, ib, i)
        if r1 <= 0.0 and f[o + O_STATE] != ST_PENDING_REPLACE:
            _free_slot(f, ib, slot)
            return S_DONE
        return S_OK
    if kind == 1:
        _reserve(f, ib, a, i, sd, -r0)
        _free_slot(f, ib, slot)
        return S_DONE
    if kind == 2:
        if not (q > 0.0 and q < INF) or f[o + O_STATE] == ST_PENDING_REPLACE:
            return S_INVALID
        f[o + O_PQTY] = q
        f[o + O_PPX] = px
        f[o + O_STATE] = ST_PENDING_REPLACE
    elif kind == 3:
        if not (q > 0.0 and q < INF):
            return S_INVALID
        f[o + O_QTY] = q
        f[o + O_PX] = px
        f[o + O_STATE] = ST_LIVE
    else:
        if f[o + O_STATE] != ST_PENDING_REPLACE:
            return S_STALE
        f[o + O_STATE] = ST_LIVE
    r1 = _reserved(f, o)
    if r1 != r0:
        _reserve(f, ib, a, i, sd, r1 - r0)
    if r1 <= 0.0 and f[o + O_STATE] != ST_PENDING_REPLACE:
        _free_slot(f, ib, slot)
        return S_DONE
    return S_OK


@njit(cache=True, _nrt=False, error_model="numpy")
def position_fill(f, ib, a, i, sd, q, px, set_last):
    """A fill outside the order book (drop copy; a bust is a reversed fill; a correction both)."""
    if a < 0 or a >= ib[H_NACC] or i < 0 or i >= ib[H_NINS]:
        return S_INVALID
    if not (q > 0.0 and q < INF and px > 0.0 and px < INF):
        return S_INVALID
    pos, avg = _apply_fill(f, ib, a, i, sd, q, px)
    leg = _leg(ib, a, i)
    _set_leg(f, ib, a, i, pos, avg, f[leg + L_OB], f[leg + L_OS])
    if set_last:
        f[fo(ib, FV_INS) + i * NI + I_LAST_FILL] = px
        _refresh_mark(f, ib, i)
    return S_OK


@njit(cache=True, _nrt=False, error_model="numpy")
def load_position(f, ib, a, i, qty, avg):
    """Start-of-day position at its average cost; P&L is measured from that cost."""
    if a < 0 or a >= ib[H_NACC] or i < 0 or i >= ib[H_NINS]:
        return S_INVALID
    if not (abs(qty) < INF and avg > 0.0 and avg < INF):
        return S_INVALID
    leg = _leg(ib, a, i)
    mult = f[fo(ib, FV_INS) + i * NI + I_MULT]
    # cash is the account's real cash (already net of what the position cost), so only the P&L
    # base moves: daily P&L = cash + marked positions - base
    f[fo(ib, FV_ACC) + a * NA + A_PNL_BASE] += qty * avg * mult - f[leg + L_POS] * f[leg + L_AVG] * mult
    _set_leg(f, ib, a, i, qty, avg, f[leg + L_OB], f[leg + L_OS])
    return S_OK


@njit(cache=True, _nrt=False, error_model="numpy")
def set_reference(f, ib, i, px):
    if i < 0 or i >= ib[H_NINS] or not (px > 0.0 and px < INF):
        return S_INVALID
    f[fo(ib, FV_INS) + i * NI + I_REF_LIVE] = px
    _refresh_mark(f, ib, i)
    return S_OK


@njit(cache=True, _nrt=False, error_model="numpy")
def rebuild(f, ib):
    """Recompute marks, every cached contribution and every aggregate from the leg states.

    Used after building or restoring buffers; also removes any floating drift of the
    incremental aggregates."""
    for i in range(ib[H_NINS]):
        ins = fo(ib, FV_INS) + i * NI
        f[ins + I_MARK] = _mark_of(f, ins)
    for a in range(ib[H_NACC]):
        acc = fo(ib, FV_ACC) + a * NA
        f[acc + A_GROSS] = 0.0
        f[acc + A_NETBUY] = 0.0
        f[acc + A_NETSELL] = 0.0
        f[acc + A_MTM] = 0.0
    s = fo(ib, FV_ACCSEC)
    f[s:s + ib[H_NACC] * ib[H_NSEC]] = 0.0
    s = fo(ib, FV_BOOK)
    f[s:s + ib[H_NACC] * ib[H_NSCEN]] = 0.0
    for a in range(ib[H_NACC]):
        for i in range(ib[H_NINS]):
            leg = _leg(ib, a, i)
            for c in range(L_CG, NL):
                f[leg + c] = 0.0
            _set_leg(f, ib, a, i, f[leg + L_POS], f[leg + L_AVG], f[leg + L_OB], f[leg + L_OS])
    return 0


# ---------------------------------------------------------------- batch replay
@njit(cache=True, _nrt=False, error_model="numpy")
def replay(f, ib, kind, sess, acct, instr, side, qty, price, is_mkt, dup, now, ref,
           codes, values, limits, slot_of):
    """Replay recorded order flow through the same rules, in one loop.

    NEW: checked; if accepted, sent and acknowledged. REPLACE (ref = index of the NEW event):
    checked on its change; if accepted, replaced at once. CANCEL (ref = the NEW): counted as a
    message and, if admitted, the order's reservation released. FILL (ref = the NEW): applied to
    the order if it is still live (an order rejected under these limits has none). PRICE: live
    reference price. MSG: any other message, counted against the session throttle."""
    out = fo(ib, FV_OUT)
    n = kind.shape[0]
    slot_of[:] = -1  # event index of a NEW -> its order slot (the caller allocates: no NRT here)
    for e in range(n):
        k = kind[e]
        c = 0
        if k == EV_NEW:
            c = check_new(f, ib, sess[e], acct[e], instr[e], side[e], qty[e], price[e],
                          is_mkt[e] != 0, dup[e] != 0, now[e])
            if c <= 0:
                s = on_sent(f, ib, sess[e], acct[e], instr[e], side[e], qty[e], price[e])
                if s >= 0:
                    f[fo(ib, FV_ORD) + s * NO + O_STATE] = ST_LIVE
                    slot_of[e] = s
                else:
                    c = _rej(f, ib, CHECK_ERROR, s, 0.0, 0)
        elif k == EV_REPLACE:
            r = ref[e]
            s = slot_of[r] if 0 <= r < n else -1
            c = check_replace(f, ib, sess[e], s, qty[e], price[e], dup[e] != 0, now[e])
            if c <= 0:
                if slot_transition(f, ib, s, 3, qty[e], price[e]) == S_DONE:
                    slot_of[r] = -1
        elif k == EV_CANCEL:
            code, nw = _message_rate(f, ib, sess[e], now[e])
            c = code if code != 0 else -nw
            r = ref[e]
            if code == 0 and 0 <= r < n and slot_of[r] >= 0:
                slot_transition(f, ib, slot_of[r], 1, 0.0, 0.0)
                slot_of[r] = -1
        elif k == EV_FILL:
            r = ref[e]
            if 0 <= r < n and slot_of[r] >= 0:
                if slot_transition(f, ib, slot_of[r], 0, qty[e], price[e]) == S_DONE:
                    slot_of[r] = -1
            else:
                c = UNKNOWN_ORDER
        elif k == EV_PRICE:
            set_reference(f, ib, instr[e], price[e])
        elif k == EV_MSG:
            code, nw = _message_rate(f, ib, sess[e], now[e])
            c = code if code != 0 else -nw
        codes[e] = c
        if c > 0:
            values[e] = f[out + 1]
            limits[e] = f[out + 2]
    return n

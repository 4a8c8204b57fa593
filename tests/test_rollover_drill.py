"""The restart drill across a trading-day rollover: the daemon (`fixgw run`) is SIGKILLed just before and just
after a rollover in the middle of a flow of orders and fills; nothing is lost or counted twice. (A crash during
the rollover, between its two renames, is in tests/test_rollover.py.)"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest

from tests.test_daemon import _journal_fills, daemon_stack, short_tmp  # noqa: F401  (fixtures)


@pytest.mark.parametrize("when", ["before", "after"])
def test_sigkill_around_a_rollover_loses_and_double_counts_nothing(daemon_stack, when: str) -> None:  # noqa: F811
    stack, d, notify = daemon_stack
    d.start()
    notify.wait_for("READY=1")
    c = stack.client()
    day0 = d.admin("status")["trading_day"]["day"]
    sent: list[str] = []

    def flow(prefix: str, n_orders: int) -> None:  # AAPL fills at once, JPM rests (GTC); paced by sleeps
        for n in range(n_orders):
            cl = f"{prefix}{n}"
            if n % 3 == 2:
                c.new_order(cl, "ACC1", "JPM", "1", 10, 200.0, extra={59: "1"})
            else:
                c.new_order(cl, "ACC1", "AAPL", "1" if n % 2 else "2", 10, 190.0)
            sent.append(cl)
            time.sleep(0.03)

    first = threading.Thread(target=flow, args=("A", 40))
    first.start()
    c.wait_for(lambda m: m.get(11) == "A20")
    if when == "after":
        rolled = d.admin("rollover", "--who", "drill", "--why", "drill: SIGKILL right after")
        assert rolled["ok"] and rolled["previous_day"] == day0
    assert d.kill(signal.SIGKILL) == -signal.SIGKILL
    first.join(30)
    for o in list(stack.sim.orders.values()):  # the venue works on while the gateway is dead
        if o.symbol == "JPM" and o.leaves > 0:
            stack.sim.fill_open(o.cl_ord_id, 4)
            break
    d.start()
    notify.wait_for("READY=1")
    assert c.wait_logon(30)
    if when == "before":
        rolled = d.admin("rollover", "--who", "drill", "--why", "drill: after a SIGKILL")
        assert rolled["ok"] and rolled["previous_day"] == day0
    second = threading.Thread(target=flow, args=("B", 15))
    second.start()
    second.join(30)

    for cl in sent:
        c.wait_for(lambda m, cl=cl: m.get(11) == cl and m.get(35) == "8", timeout=30)
    venue_exec_ids = {f["exec_id"] for f in stack.sim.fills}
    for exec_id in venue_exec_ids:
        c.wait_for(lambda m, x=exec_id: m.get(17) == x, timeout=30)
    st = d.admin("status")
    assert st["trading_day"]["day"] != day0 and day0 in st["trading_day"]["archived_days"]
    fills = _journal_fills(stack.cfg.state_dir / "journal.sqlite")
    counts = Counter(f[0] for f in fills)
    assert counts and max(counts.values()) == 1, "a fill was journaled twice"
    assert set(counts) == venue_exec_ids, "a fill was lost"
    truth: dict[str, float] = {}
    for f in stack.sim.fills:
        truth[f["symbol"]] = truth.get(f["symbol"], 0.0) + (f["qty"] if f["side"] == "1" else -f["qty"])
    assert st["positions"]["ACC1"] == pytest.approx({k: v for k, v in truth.items() if v})
    venue_open = sorted(o.cl_ord_id for o in stack.sim.orders.values() if o.leaves > 0)
    assert st["open_orders"] == len(venue_open)
    assert not any(m.get(35) == "3" for m in c.admin_received)

"""The floor: the least any order-checking gateway built on QuickFIX for Python must do per order, on top of
the bare pass-through (bench/passthrough.py), with none of the gateway's checks, ledger or projections.

Per new order (the load client sends nothing else): read the message once (one SWIG crossing,
gateway.fix.messages.to_dict), give it a ClOrdID of the gateway's own (several clients share one venue
session), log the decision in the event log (the gateway's own EventLog and msgspec schema; off with
--no-event-log), copy and forward. Per report: read it
once, find whose ClOrdID it carries, log it, copy it back with the client's ClOrdID. Nothing else: no risk
check, no order state, no locks beyond the event log's, no venue bookkeeping, no journal, metrics or
reconciliation.

It answers one question (docs/performance.md, issue 14): how much of the gateway's cost over the bare
pass-through is the cost of doing anything at all in Python per message. Run by bench/run as the
`floor` arrangement:

    bench/run --arrangements passthrough,floor,gateway --rates 500,1000,2000 --bursts 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import quickfix as fix  # noqa: E402

from passthrough import PassThrough, add_arguments, serve  # noqa: E402  (bench/ is on the path: run as a script)
from gateway.events import schema  # noqa: E402
from gateway.events.log import EventLog  # noqa: E402
from gateway.fix import messages as fm  # noqa: E402


class Floor(PassThrough):
    def __init__(self, a: argparse.Namespace) -> None:
        super().__init__(a)
        self.events = None if a.no_event_log else EventLog(Path(a.state_dir) / "events.jsonl")
        self.by_venue: dict[str, tuple[str, int]] = {}  # venue ClOrdID -> (client ClOrdID, order number)
        self.next = 0

    def from_client(self, msg: fix.Message, sid: fix.SessionID) -> None:
        f = fm.to_dict(msg)
        if f[fm.MSG_TYPE] != "D":
            raise fix.UnsupportedMessageType()
        self.next += 1
        venue_cl = f"F{self.next}"
        self.by_venue[venue_cl] = (f[fm.CL_ORD_ID], self.next)
        if self.events is not None:
            self.events.append(schema.NewOrder(
                request=self.next, session="FIXGW->BENCH", cl_ord_id=f[fm.CL_ORD_ID], venue_cl_ord_id=venue_cl,
                number=self.next, account=f.get(fm.ACCOUNT, ""), symbol=f[fm.SYMBOL], side=f[fm.SIDE],
                ord_type=f[fm.ORD_TYPE], qty=fm.num(f, fm.ORDER_QTY), px=fm.num(f, fm.PRICE), ts=time.time_ns()))
        out = fm.copy_for_forwarding(msg, f)
        out.setField(fm.CL_ORD_ID, venue_cl)
        fix.Session.sendToTarget(out, self.venue)

    def from_venue(self, msg: fix.Message, sid: fix.SessionID) -> None:
        f = fm.to_dict(msg)
        known = self.by_venue.get(f.get(fm.CL_ORD_ID, ""))
        if known is None or self.client is None:
            return
        cl, number = known
        if self.events is not None:
            self.events.append(schema.Execution(
                venue_cl_ord_id=f[fm.CL_ORD_ID], number=number, exec_type=f[fm.EXEC_TYPE], exec_id=f[fm.EXEC_ID],
                ord_status=f[fm.ORD_STATUS], last_qty=fm.num(f, fm.LAST_QTY), last_px=fm.num(f, fm.LAST_PX),
                session="FIXGW->BENCH", account=f.get(fm.ACCOUNT, ""), symbol=f.get(fm.SYMBOL, ""),
                side=f.get(fm.SIDE, ""), cl_ord_id=cl, ts=time.time_ns()))
        out = fm.copy_for_forwarding(msg, f)
        out.setField(fm.CL_ORD_ID, cl)
        fix.Session.sendToTarget(out, self.client)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="the least a gateway must do per order (benchmark floor)")
    add_arguments(p)
    p.add_argument("--no-event-log", action="store_true", help="not even the event log: parse, re-ID, forward")
    return serve(Floor(p.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())

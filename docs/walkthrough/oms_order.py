"""One scripted OMS order for the operations walk-through: send it, print the first report that settles it.

usage: oms_order.py STATE_DIR PORT CLORDID SYMBOL [wait-cancel | gtc]
"""

import sys
from pathlib import Path

from sim.oms_client import OmsClient

PRICES = {"AAPL": 190.0, "XOM": 110.0, "MSFT": 410.0, "JPM": 200.0}


def main() -> int:
    state, port, cl, symbol = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    mode = sys.argv[5] if len(sys.argv) > 5 else ""
    c = OmsClient("OMS1", "FIXGW", port, state)
    c.start()
    try:
        if not c.wait_logon():
            print("no logon", file=sys.stderr)
            return 1
        c.new_order(cl, "ACC1", symbol, "1", 100, PRICES[symbol], tif="1" if mode == "gtc" else None)
        m = c.wait_for(lambda m: m.get(11) == cl and m.get(150) in ("0", "8", "F"))
        print(f"  {cl}: 35={m.get(35)} 150={m.get(150)} 39={m.get(39)} 103={m.get(103, '')} 58={m.get(58, '')}")
        if mode == "wait-cancel":  # the kill switch's cancel of this resting order
            m = c.wait_for(lambda m: m.get(11) == cl and m.get(150) == "4", timeout=60)
            print(f"  {cl}: 35={m.get(35)} 150={m.get(150)} 39={m.get(39)} (cancelled by the gateway)")
        return 0
    finally:
        c.stop()


if __name__ == "__main__":
    sys.exit(main())

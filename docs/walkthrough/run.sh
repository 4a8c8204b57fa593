#!/usr/bin/env bash
# Operations walk-through: the venue simulator (with drop-copy faults), the daemon, a scripted OMS session,
# and the admin (a trading-day rollover among them), journal, metrics and reconcile commands, all on
# 127.0.0.1. After ./dev setup:
#   docs/walkthrough/run.sh [WORK_DIR]        (default: a new temporary folder, kept and printed at the end)
# It uses the demo's fixed ports (19878, 19880, 19881) and 19890 for metrics: stop anything on them first.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
W="${1:-$(mktemp -d /tmp/fixgw-walk.XXXXXX)}"
mkdir -p "$W"
export PATH="$ROOT/.venv/bin:$PATH" PYTHONPATH="$ROOT"
CFG="$W/gateway.toml"
sed -e "s#^state_dir = .*#state_dir = \"$W/gw\"#" -e "s#\"\.\./examples/#\"$ROOT/config/examples/#" \
    -e 's/^port = 0/port = 19890/' "$ROOT/config/demo/gateway.toml" > "$CFG"
sed -e "s#^state_dir = .*#state_dir = \"$W/sim\"#" "$ROOT/config/demo/venue_sim.toml" > "$W/venue_sim.toml"
cat >> "$W/venue_sim.toml" <<'TOML'

# The walk-through's extra faults: the drop copy alters AAPL's quantity and leaves XOM's fill out.
[[venue_sim.dropcopy_faults]]
kind = "qty"
symbol = "AAPL"
value = 7

[[venue_sim.dropcopy_faults]]
kind = "omit"
symbol = "XOM"
TOML
order() { python "$ROOT/docs/walkthrough/oms_order.py" "$W/client" 19878 "$@"; }
show() { echo; echo "\$ $*"; "$@" || echo "(exit $?)"; }
wait_line() { until grep -q "$2" "$1" 2>/dev/null; do sleep 0.2; done; }

fixgw venue-sim --config "$W/venue_sim.toml" > "$W/sim.log" 2>&1 & SIM=$!
fixgw run --config "$CFG" > "$W/gw.log" 2>&1 & GW=$!
trap 'kill $GW $SIM 2>/dev/null || true' EXIT
wait_line "$W/gw.log" '"msg": "ready"'
wait_line "$W/gw.log" 'venue session logged on'
echo "\$ orders: A1 AAPL, X1 XOM, M1 MSFT (filled or partly filled by the simulator)"
order A1 AAPL; order X1 XOM; order M1 MSFT
echo "\$ order J1 JPM (rests at the venue), then wait for its cancel"
order J1 JPM wait-cancel & CL=$!
wait_line "$W/gw/events.log" '"cl":"J1"'
until [[ "$(fixgw admin --config "$CFG" status)" == *'"cl_ord_id": "J1"'* ]]; do sleep 0.2; done
show fixgw admin --config "$CFG" status
show fixgw admin --config "$CFG" kill on --scope account:ACC1 --who alice --why "runaway algo test"
wait $CL
echo; echo "\$ order K1 AAPL   (under the kill switch)"; order K1 AAPL
show fixgw admin --config "$CFG" kill off --scope account:ACC1 --who alice --why "test over"
show fixgw admin --config "$CFG" reload --who bob --why "new limits"
show fixgw admin --config "$CFG" logout "FIXGW->OMS1" --who bob --why "client maintenance"
show fixgw admin --config "$CFG" logon "FIXGW->OMS1" --who bob --why "maintenance over"
day_view() {
  echo; echo "\$ fixgw admin --config \$CFG status   (trading_day, open_orders, orders)"
  fixgw admin --config "$CFG" status | python -c 'import json, sys
d = json.load(sys.stdin)
print(json.dumps({k: d[k] for k in ("trading_day", "open_orders", "orders")}, indent=1))'
}
echo; echo "\$ order G1 JPM gtc   (rests at the venue through the rollover)"; order G1 JPM gtc
day_view
show fixgw admin --config "$CFG" rollover --who carol --why "end of trading day"
day_view
show fixgw journal --config "$CFG" --table admin
show fixgw journal --config "$CFG" --code KILL_SWITCH_ACCOUNT
echo; echo "\$ curl -s 127.0.0.1:19890/metrics | grep ..."
curl -s 127.0.0.1:19890/metrics | grep -E '^fixgw_(requests_(rejected|accepted)_total|recon_open_breaks|alerts_total)'
sleep 1.5  # the reconciliation's grace period (1 s here) must run out before XOM's missing copy is a break
show fixgw reconcile --config "$CFG" --date "$(date -u +%Y%m%d)" --out "$W/reports"
echo; echo "\$ kill -TERM <gateway>"; kill -TERM $GW; wait $GW && echo "gateway exit 0"
show fixgw reconcile --gateway-log "$W/gw/fixlog/venue/FIX.4.4-FIXGW-VENUE.messages.current.log" \
  --dropcopy-log "$W/gw/fixlog/dropcopy/FIX.4.4-FIXGW_DC-VENUE_DC.messages.current.log" \
  --venue-comp-id VENUE --dropcopy-comp-id VENUE_DC --date "$(date -u +%Y%m%d)" --grace-seconds 1 \
  --out "$W/offline"
echo; echo "reports: $W/reports (live store), $W/offline (from the two FIX logs); state and logs in $W"

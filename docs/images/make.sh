#!/usr/bin/env bash
# Remakes the pictures in docs/: the demo's controls report (its HTML page in headless Chromium, and its PNG).
# Needs Debian's chromium (apt-get install chromium); run after ./dev setup. With a folder, the demo's state (and
# its gateway.toml) is kept there, for what-if and journal queries on the same day.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -gt 0 ]; then
  state=$1
  mkdir -p "$state"
else
  state=$(mktemp -d)
  trap 'rm -rf "$state"' EXIT
fi
.venv/bin/fixgw demo --state-dir "$state" > "$state/demo.out"
day=$(ls "$state/gateway/reports" | sed -n 's/^controls-\([0-9]\{8\}\)\.html$/\1/p')
cp "$state/gateway/reports/controls-$day-utilisation.png" docs/images/controls-report-utilisation.png
cp "$state/gateway/reports/controls-$day.md" docs/images/controls-report-demo.md
# the flags keep Chromium off the network (this machine has none) and out of the user's profile
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$state/chromium" --hide-scrollbars \
  --window-size=1280,2600 --screenshot="$PWD/docs/images/controls-report.png" \
  "file://$state/gateway/reports/controls-$day.html" 2>/dev/null
echo "docs/images/controls-report.png, controls-report-utilisation.png, controls-report-demo.md from trading day $day"

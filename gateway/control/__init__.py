"""The control plane: the daemon's lifecycle and what operators drive.

daemon      the supervised process: start, tasks, watchdog, checkpoints, clean stop
admin       the admin socket (`fixgw admin ...`): status, kill switch, reduce-only, reload, sessions
rollover    the trading-day boundary: engines stopped, the day archived, the carried book replayed
checkpoint  the order-path state at an event (a child process), so a start replays only the tail of the day
sdnotify    systemd's READY/WATCHDOG/STOPPING
logs        structured JSON logging
"""

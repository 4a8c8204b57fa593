"""Start-of-day positions and cash: the desk's overnight book, from the back office's CSV.

    account,symbol,quantity,average_price
    ACC1,AAPL,1500,187.20        a long position at its average cost
    ACC1,MSFT,-200,402.10        a short one
    ACC1,CASH,2500000,           the account's cash (replaces accounts.toml's): symbol CASH, no price

Validated against the risk reference data like every risk file: a bad file raises ConfigError naming the file,
the line (1 is the header), the field and why; nothing of it is applied then.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from config.errors import ConfigError
from config.risk_models import RiskConfig

COLUMNS = ("account", "symbol", "quantity", "average_price")
CASH = "CASH"


@dataclass(frozen=True)
class StartOfDay:
    positions: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # (qty, avg price)
    cash: dict[str, float] = field(default_factory=dict)


def _number(path: Path, line: int, name: str, text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ConfigError(str(path), f"line {line}.{name}", f"not a number: {text!r}") from None
    if not math.isfinite(x):
        raise ConfigError(str(path), f"line {line}.{name}", f"not a finite number: {text!r}")
    return x


def load_positions(path: Path, cfg: RiskConfig) -> StartOfDay:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise ConfigError(str(path), "<file>", e.strerror or str(e)) from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "<file>", "not UTF-8 text") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise ConfigError(str(path), "line 1", f"empty file: expected the header {','.join(COLUMNS)}")
    header = [h.strip() for h in rows[0]]
    if tuple(header) != COLUMNS:
        raise ConfigError(str(path), "line 1", f"header must be {','.join(COLUMNS)}, not {','.join(header)}")
    accounts = {a.name: a for a in cfg.accounts}
    instruments = {i.symbol: i for i in cfg.instruments}
    if CASH in instruments:
        raise ConfigError(str(path), "symbol", f"{CASH} is the cash row's symbol and also an instrument")
    max_qty, max_px = cfg.settings.max_order_qty, cfg.settings.max_price
    sod = StartOfDay()
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(COLUMNS):
            raise ConfigError(str(path), f"line {n}", f"expected {len(COLUMNS)} cells, found {len(row)}")
        account, symbol, qty_text, px_text = (c.strip() for c in row)
        if account not in accounts:
            raise ConfigError(str(path), f"line {n}.account", f"unknown account {account!r}")
        qty = _number(path, n, "quantity", qty_text)
        if symbol == CASH:
            if px_text:
                raise ConfigError(str(path), f"line {n}.average_price", "a CASH row has no price")
            if account in sod.cash:
                raise ConfigError(str(path), f"line {n}.account", f"second CASH row for {account}")
            sod.cash[account] = qty
            continue
        ins = instruments.get(symbol)
        if ins is None:
            raise ConfigError(str(path), f"line {n}.symbol", f"unknown symbol {symbol!r}")
        allowed = accounts[account].allowed_instruments
        if allowed is not None and symbol not in allowed:
            raise ConfigError(str(path), f"line {n}.symbol", f"{account} may not hold {symbol} (accounts file)")
        if abs(qty) > max_qty:
            raise ConfigError(str(path), f"line {n}.quantity", f"{qty_text} is beyond max_order_qty {max_qty:g}")
        px = _number(path, n, "average_price", px_text) if px_text else math.nan
        if qty != 0 and not (0 < px <= max_px):
            raise ConfigError(str(path), f"line {n}.average_price",
                              f"must be > 0 and <= max_price {max_px:g} for a position, not {px_text!r}")
        if (account, symbol) in sod.positions:
            raise ConfigError(str(path), f"line {n}.symbol", f"second row for {account} {symbol}")
        if qty != 0:
            sod.positions[(account, symbol)] = (qty, px)
    return sod

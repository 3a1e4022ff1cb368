#!/usr/bin/env python3
"""Candle files on the real NYSE calendar, for backtests of equity data.

No real US equity prices ship with the project (shared data holds only
EURUSD), so these files take the *calendar* from a real source and the
prices from a seeded random walk: the sessions, holidays (Thanksgiving,
Good Friday, Juneteenth from 2022, the 2018-12-05 and 2025-01-09 national
days of mourning...) and half-days (13:00 closes) are the New York Stock
Exchange's as `exchange_calendars` 4.13 (XNYS) records them.

    fixtures/ACME-1d.csv    one bar per session, 2018-01-02 .. 2025-06-30,
                            dated at midnight UTC as daily files are
    fixtures/ACME-30m.csv   30-minute bars of every session, 2024-10-01 ..
                            2025-01-31 (overnight, weekend and holiday
                            closures; half-days end at 13:00 New York time)

Prices are in cents (two decimals), as exchanges quote them.

    python -m venv /tmp/bt && /tmp/bt/bin/pip install exchange-calendars==4.13.2
    /tmp/bt/bin/python tests/backtest/make_nyse_fixture.py
"""
from pathlib import Path

import exchange_calendars as xcals
import pandas as pd

HERE = Path(__file__).resolve().parent
MASK = (1 << 64) - 1


class Walk:
    """splitmix64 random walk: reruns give the same bytes."""

    def __init__(self, seed, price, vol):
        self.state, self.price, self.vol = seed, price, vol

    def unit(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return ((z ^ (z >> 31)) >> 11) * (1.0 / (1 << 53))

    def bar(self):
        o = round(self.price * (1.0 + (self.unit() - 0.5) * self.vol * 0.5), 2)
        c = round(o * (1.0 + (self.unit() - 0.5) * self.vol * 2.0), 2)
        h = round(max(o, c) * (1.0 + self.unit() * self.vol), 2)
        lo = round(min(o, c) * (1.0 - self.unit() * self.vol), 2)
        v = int(100_000 + self.unit() * 900_000)
        self.price = c
        return o, max(h, o, c), min(lo, o, c), c, v


def write(path, rows):
    with open(path, "w") as f:
        f.write("Date,Open,High,Low,Close,Volume\n")
        for t, (o, h, lo, c, v) in rows:
            f.write(f"{t},{o:.2f},{h:.2f},{lo:.2f},{c:.2f},{v}\n")
    print(f"{path.name}: {len(rows)} bars")


def main():
    if xcals.__version__ != "4.13.2":
        raise SystemExit(f"exchange_calendars 4.13.2 is pinned, found {xcals.__version__}")
    nyse = xcals.get_calendar("XNYS", start="2018-01-01", end="2025-12-31")
    out = HERE / "fixtures"
    walk = Walk(0xACE, 100.0, 0.02)
    daily = [(s.strftime("%Y-%m-%d"), walk.bar())
             for s in nyse.sessions_in_range("2018-01-02", "2025-06-30")]
    write(out / "ACME-1d.csv", daily)

    walk = Walk(0xBEE, 50.0, 0.004)
    intraday = []
    for s in nyse.sessions_in_range("2024-10-01", "2025-01-31"):
        t, close = nyse.session_open(s), nyse.session_close(s)
        while t < close:
            intraday.append((t.strftime("%Y-%m-%d %H:%M:%S"), walk.bar()))
            t += pd.Timedelta(minutes=30)
    write(out / "ACME-30m.csv", intraday)


if __name__ == "__main__":
    main()

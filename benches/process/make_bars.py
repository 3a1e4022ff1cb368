#!/usr/bin/env python3
"""Synthetic one-minute bars as a CSV, for the whole-process comparison.

The bars are `synthetic_bars` of benches/backtesting_py.py (and of
benches/lib.rs), so every tool reads the same numbers.

    python benches/process/make_bars.py N OUT.csv
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from backtesting_py import synthetic_bars  # noqa: E402


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    data = synthetic_bars(n)
    data.index.name = "time"
    data.to_csv(out, date_format="%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    main()

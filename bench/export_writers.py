#!/usr/bin/env python
"""CPU time (process time) of the export writers (apps/reports/writers.py) on N rows shaped like
the usage-records export (5 text, 3 date-time and 1 decimal column), with ordinary text and with hostile text
(formula-like, control characters) in every text cell: what the formula escaping and the
XML-character cleaning cost. No database.

    PYTHONPATH=$PWD .venv/bin/python bench/export_writers.py [--rows 100000] [--against <git rev>]

``--against`` also measures the writers of an earlier commit (read with ``git show``), for a ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")


def _load_writers_of(rev: str):
    source = subprocess.run(
        ["git", "show", f"{rev}:apps/reports/writers.py"], check=True, capture_output=True, text=True
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location(f"writers_{rev}", handle.name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    os.unlink(handle.name)
    return module


def _measure(writers, rows) -> tuple[float, float]:
    column = writers.Column
    columns = [column(f"t{i}", f"t{i}", lambda r, i=i: r[i]) for i in range(5)] + [
        column("s", "s", lambda r: r[5], writers.DATETIME),
        column("e", "e", lambda r: r[6], writers.DATETIME),
        column("h", "h", lambda r: r[7], writers.DECIMAL),
        column("r", "r", lambda r: r[8], writers.DATETIME),
    ]
    start = time.process_time()
    for _line in writers.csv_lines(columns, rows):
        pass
    csv_seconds = time.process_time() - start
    with tempfile.TemporaryFile() as handle:
        start = time.process_time()
        writers.write_xlsx(handle, columns, rows, title="bench")
        xlsx_seconds = time.process_time() - start
    return csv_seconds, xlsx_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--against", help="a git revision whose writers to measure too")
    args = parser.parse_args()

    import django

    django.setup()
    from django.utils import timezone

    from apps.reports import writers

    at = timezone.now()
    _measure(writers, [("warm-up",) * 5 + (at, at, Decimal(1), at)] * 100)  # imports openpyxl and lxml
    ordinary = ("さくらインターネット", "rec-1", "0b8f6c1e-1111-2222-3333", "kyoto-u", "tokyo-h200")
    hostile = "=1+1", "-2+3\x1b", "@SUM(A1)", "\t=cmd|' /C calc'!A0", "名前\x0b"
    for label, texts in (("ordinary text", ordinary), ("hostile text", hostile)):
        rows = [(*texts, at, at, Decimal("1.2500"), at) for _ in range(args.rows)]
        modules = [("this tree", writers)]
        if args.against and label == "ordinary text":  # older writers may fail on hostile text
            modules.insert(0, (args.against, _load_writers_of(args.against)))
        for name, module in modules:
            csv_seconds, xlsx_seconds = _measure(module, rows)
            print(f"{label:14} {name:10} {args.rows} rows: CSV {csv_seconds:.2f} s XLSX {xlsx_seconds:.2f} s")


if __name__ == "__main__":
    main()

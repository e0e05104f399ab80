"""Peak memory (RSS) of ``manage.py allocate`` on a generated instance of a given size (50 MB).

    .venv/bin/python bench/allocate_memory.py                 # a 50 MB instance
    .venv/bin/python bench/allocate_memory.py --megabytes 10 --keep /tmp/instance.json

The instance has the shape of ``bench/allocation_engine.py`` (3 GPU classes x 10 providers = 30
pools; each org files 2 lines; 40 % of the lines list their eligible pools) and is written as
compact JSON (the most lines per megabyte; ``--indent 2`` for an indented file) until it reaches
``--megabytes``. The command then runs in a child process with ``--output`` to a file, and
the child's peak resident set size is read from ``getrusage(RUSAGE_CHILDREN)``. Reported: the
instance's size and lines, the wall time, the peak RSS, and RSS per MB of input. The result must be
valid JSON (checked).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("GB200", "B200", "H200")
PROVIDERS = tuple(f"prov{i:02d}" for i in range(1, 11))
DOMESTIC = PROVIDERS[:6]


def line_count(line: dict) -> int:
    return 6 + len(line.get("pools", ()))


def write_instance(path: Path, megabytes: float, *, seed: int = 42, indent: int | None = None) -> int:
    """Write an instance of about ``megabytes`` MB; returns its number of request lines."""
    rng = np.random.default_rng(seed)
    target = int(megabytes * 1024 * 1024)
    demand = dict.fromkeys(CLASSES, 0)
    lines = []
    size = 0
    i = 0
    while size < target:
        tier = int(rng.integers(1, 4))
        for gpu_class in rng.choice(CLASSES, size=2, replace=False):
            amount = int(np.clip(rng.lognormal(np.log(2000), 1.0), 10, 100_000))
            demand[str(gpu_class)] += amount
            line = {"org": f"org{i:07d}", "class": str(gpu_class), "demand": amount}
            line["weight"] = round(tier * float(rng.uniform(0.5, 1.5)), 3)
            if rng.random() < 0.05:
                line["floor"] = amount // 10
            roll = rng.random()
            if roll >= 0.60:
                providers = (
                    [p for p in PROVIDERS if p not in set(rng.choice(PROVIDERS, size=2, replace=False))]
                    if roll < 0.85
                    else list(DOMESTIC)
                )
                line["pools"] = [f"{p}-{gpu_class}" for p in providers]
            lines.append(line)
            if indent:
                size += len(json.dumps(line, indent=indent)) + 2 + 4 * line_count(line)
            else:
                size += len(json.dumps(line, separators=(",", ":"))) + 1
        i += 1
    pools = []
    for gpu_class in CLASSES:
        shares = rng.dirichlet([0.5 if p in DOMESTIC else 6.0 for p in PROVIDERS])
        for provider, share in zip(PROVIDERS, shares, strict=True):
            pools.append(
                {
                    "id": f"{provider}-{gpu_class}",
                    "class": gpu_class,
                    "capacity": int(0.5 * demand[gpu_class] * share),
                }
            )
    with path.open("w", encoding="utf-8") as file:
        if indent:
            json.dump({"pools": pools, "requests": lines}, file, indent=indent)
        else:
            json.dump({"pools": pools, "requests": lines}, file, separators=(",", ":"))
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=50.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--indent", type=int, default=0, help="indent the instance (default: compact)")
    parser.add_argument("--keep", metavar="PATH", help="write the instance here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        instance = Path(args.keep) if args.keep else Path(tmp) / "instance.json"
        lines = write_instance(instance, args.megabytes, seed=args.seed, indent=args.indent or None)
        output = Path(tmp) / "result.json"
        megabytes = instance.stat().st_size / 1024 / 1024
        command = [sys.executable, "manage.py", "allocate", "--input", str(instance), "--output", str(output)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        start = time.perf_counter()
        completed = subprocess.run(
            command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False
        )
        seconds = time.perf_counter() - start
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if completed.returncode != 0:
            sys.exit(f"allocate exited with {completed.returncode}")
        with output.open(encoding="utf-8") as file:
            result = json.load(file, parse_constant=lambda name: sys.exit(f"the result holds {name}"))
        print(f"instance: {megabytes:.1f} MB, {lines:,} request lines, 30 pools")
        print(
            f"allocate: {seconds:.1f} s, peak RSS {peak_kb / 1024:.0f} MB "
            f"({peak_kb / 1024 / megabytes:.1f} MB per MB of input; before the run: {before / 1024:.0f} MB)"
        )
        print(
            f"result: {output.stat().st_size / 1024 / 1024:.1f} MB, "
            f"{len(result['allocations']):,} allocations"
        )


if __name__ == "__main__":
    main()

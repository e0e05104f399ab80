"""Benchmark of the allocation engine (apps/allocations/engine.py) and of its LP reference.

    .venv/bin/python bench/allocation_engine.py            # 10,000 orgs; reference on 100 and 1,000
    .venv/bin/python bench/allocation_engine.py --orgs 20000 --reference-sizes 100

The instance: 3 GPU classes x 10 providers = 30 pools; every org files 2 request lines (2 of the 3
classes at random), so 10,000 orgs make 20,000 lines. Demands are log-normal (median 2,000
GPU-hours), weights are a tier (1, 2 or 3) times a usage factor in [0.5, 1.5], 5 % of the lines have
a floor of a tenth of their demand, and capacity covers about half of each class's demand (the
domestic providers hold about a tenth of it). Eligibility: 60 % of the lines take every pool of the
class, 25 % exclude one or two providers, 15 % are restricted to the 6 domestic providers (data
residency), some of them excluding one more. The smaller instances have the same shape (capacities
follow the demand).

Reported: the engine's median wall time over ``--runs`` runs after a warm-up run (garbage collector
paused), its peak memory (tracemalloc, in a separate run), and for the smaller sizes the LP
reference's time, the ratio, and the largest gap between the engine's whole GPU-hours and the
reference's exact amounts.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from apps.allocations.engine import Pool, RequestLine, allocate

CLASSES = ("GB200", "B200", "H200")
PROVIDERS = tuple(f"prov{i:02d}" for i in range(1, 11))
DOMESTIC = PROVIDERS[:6]


def make_instance(orgs: int, *, seed: int = 42) -> tuple[list[Pool], list[RequestLine]]:
    rng = np.random.default_rng(seed)
    requests: list[RequestLine] = []
    for i in range(orgs):
        tier = int(rng.integers(1, 4))
        for gpu_class in rng.choice(CLASSES, size=2, replace=False):
            demand = int(np.clip(rng.lognormal(np.log(2000), 1.0), 10, 100_000))
            weight = round(tier * float(rng.uniform(0.5, 1.5)), 3)
            floor = demand // 10 if rng.random() < 0.05 else 0
            roll = rng.random()
            if roll < 0.60:
                providers = None
            elif roll < 0.85:
                excluded = set(rng.choice(PROVIDERS, size=int(rng.integers(1, 3)), replace=False))
                providers = [p for p in PROVIDERS if p not in excluded]
            else:
                excluded = set(rng.choice(DOMESTIC, size=1)) if rng.random() < 0.5 else set()
                providers = [p for p in DOMESTIC if p not in excluded]
            pools = None if providers is None else [f"{p}-{gpu_class}" for p in providers]
            requests.append(RequestLine(f"org{i:05d}", str(gpu_class), demand, weight, floor, pools))
    demand_per_class = {c: sum(r.demand for r in requests if r.gpu_class == c) for c in CLASSES}
    pools = []
    for gpu_class in CLASSES:
        # The domestic providers are smaller: data residency makes them a bottleneck of their own.
        shares = rng.dirichlet([0.5 if p in DOMESTIC else 6.0 for p in PROVIDERS])
        for provider, share in zip(PROVIDERS, shares, strict=True):
            capacity = int(0.5 * demand_per_class[gpu_class] * share)
            pools.append(Pool(f"{provider}-{gpu_class}", gpu_class, capacity))
    return pools, requests


def time_engine(pools, requests, runs: int) -> tuple[float, int, object]:
    result = allocate(pools, requests)  # warm-up: imports, caches
    times = []
    for _ in range(runs):
        gc.disable()
        start = time.perf_counter()
        result = allocate(pools, requests)
        times.append(time.perf_counter() - start)
        gc.enable()
    tracemalloc.start()
    allocate(pools, requests)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak, result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orgs", type=int, default=10_000, help="orgs in the large instance")
    parser.add_argument("--runs", type=int, default=5, help="timed engine runs per instance")
    parser.add_argument(
        "--reference-sizes", default="100,1000", help="comma-separated org counts for the LP reference"
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    sizes = [int(s) for s in args.reference_sizes.split(",") if s]

    rows = []
    for orgs in [*sizes, args.orgs]:
        pools, requests = make_instance(orgs, seed=args.seed)
        seconds, peak, result = time_engine(pools, requests, args.runs)
        row = {
            "orgs": orgs,
            "lines": len(requests),
            "pools": len(pools),
            "engine": seconds,
            "peak": peak,
            "bottlenecks": sum(len(r.bottlenecks) for r in result.classes.values()),
        }
        if orgs in sizes:
            from apps.allocations.reference import reference_totals

            start = time.perf_counter()
            exact = reference_totals(pools, requests)
            row["reference"] = time.perf_counter() - start
            row["gap"] = max(abs(s.granted - exact[(s.org, s.gpu_class)]) for s in result.shares())
        rows.append(row)
        print(f"done: {orgs} orgs", file=sys.stderr)

    print(
        "| orgs | lines | pools | bottlenecks | engine (median) | engine peak memory | LP reference | ratio "
        "| max \\|granted - exact\\| |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        reference = f"{row['reference']:.2f} s" if "reference" in row else "not run"
        ratio = f"{row['reference'] / row['engine']:,.0f}x" if "reference" in row else "-"
        gap = f"{row['gap']:.3f}" if "gap" in row else "-"
        print(
            f"| {row['orgs']:,} | {row['lines']:,} | {row['pools']} | {row['bottlenecks']} "
            f"| {row['engine'] * 1000:.0f} ms | {row['peak'] / 2**20:.1f} MiB "
            f"| {reference} | {ratio} | {gap} |"
        )


if __name__ == "__main__":
    main()

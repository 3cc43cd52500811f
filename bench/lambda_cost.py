#!/usr/bin/env python3
"""Lambda memory size vs warm single-row latency and cost per million predictions (docs/deploy.md).

    .venv/bin/python bench/lambda_cost.py [--only rf,logreg] [--calls 2000] [--overhead-ms 10]

Fits / exports the benchmark models as bench/run.py does (same data, same cache), measures the scorer's
warm single-row time here (median of ``--calls`` calls of the model's benchmark method), then estimates
per Lambda memory size: Lambda gives a function CPU in proportion to its memory (one full vCPU at
1,769 MB), and the scorer scores one row on one thread, so below 1,769 MB the time is scaled by
1769 / MB and above it stays. Cost = requests x (billed GB-seconds x price + request price), billed
duration rounded up to 1 ms. ``--overhead-ms`` adds an assumed fixed time per request (handler, JSON,
the registry reads that resolve the alias): it is NOT measured here.

The prices are arm64 (Graviton) in us-east-1 as published on https://aws.amazon.com/lambda/pricing/
(as known in 2024; unchanged since arm64 launched in 2021): CHECK THEM before relying on the figures.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run as bench

PRICE_DATE = "2024 (AWS Lambda pricing page, arm64, us-east-1, first pricing tier)"
PRICE_GB_SECOND = 0.0000133334  # USD per GB-second, arm64
PRICE_REQUEST = 0.20 / 1_000_000  # USD per request
FULL_VCPU_MB = 1769
MEMORY_SIZES = (128, 256, 512, 1024, 1769, 2048, 3008)


def warm_single_row_ms(res: bench.Result, X: object, calls: int) -> float:
    """Median milliseconds of one single-row call of the benchmark method, after a warm-up; the row is a
    JSON-like list, as a request body gives it (``model.method([row])``, as bench/run.py's latency)."""
    method = getattr(res.model, res.spec.method)
    rows = [[X[i].tolist()] for i in range(min(calls, len(X)))]  # type: ignore[index]
    for r in rows[:50]:
        method(r)
    times = []
    for r in rows:
        t0 = time.perf_counter_ns()
        method(r)
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e6


def at_memory(scorer_ms: float, mb: int) -> float:
    return scorer_ms * max(1.0, FULL_VCPU_MB / mb)


def cost_per_million(ms: float, mb: int) -> float:
    billed_s = math.ceil(ms) / 1000.0
    return 1_000_000 * (billed_s * (mb / 1024.0) * PRICE_GB_SECOND + PRICE_REQUEST)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(bench.MODEL_NAMES))
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--overhead-ms", type=float, default=10.0)
    args = p.parse_args(argv)
    bench.CACHE.mkdir(parents=True, exist_ok=True)
    src = bench.source_hash(bench.REPO / "scorer", bench.REPO / "modelsync" / "export")
    wanted = args.only.split(",")
    print(f"Prices: {PRICE_GB_SECOND} USD/GB-s, {PRICE_REQUEST * 1e6:.2f} USD/1M requests, {PRICE_DATE}")
    print(f"Assumed fixed overhead per request: {args.overhead_ms} ms (not measured)\n")
    print("| model | scorer ms (here) | " + " | ".join(f"{mb} MB" for mb in MEMORY_SIZES) + " |")
    print("|---|---|" + "---|" * len(MEMORY_SIZES))
    for spec in bench._specs():
        if spec.name not in wanted:
            continue
        res = bench.prepare(spec, src)
        if not res.supported:
            print(f"| {spec.label} | unsupported: {res.unsupported_reason} |")
            continue
        _, _, Xte, _ = bench.make_data(spec.task)
        ms = warm_single_row_ms(res, Xte, args.calls)
        cells = []
        for mb in MEMORY_SIZES:
            t = at_memory(ms, mb) + args.overhead_ms
            cells.append(f"{t:.1f} ms / ${cost_per_million(t, mb):.2f}")
        print(f"| {spec.label} | {ms:.3f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

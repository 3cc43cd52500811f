"""Single-row predict requests through the local stack (``modelsync local``) with 8 clients: requests per
second and latency p50 / p99, with ``--concurrency`` at its default and at 1 (serialised, as before).

The stack runs as the command users run (a subprocess, its ready line read), the benchmark forest is
published through it (S3 upload -> Publish function), and 8 client threads each keep one HTTP connection
and send ``POST /models/bench-rf/predict`` with one row for a fixed time. The clients share this process's
cores with the stack's: figures are indicative of the local stack, not of Lambda.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from typing import Any

import _serving as sv
import run
from _section import Section, Target

from modelsync.local.commands import DEFAULT_CONCURRENCY

CLIENTS = 8


def _start(concurrency: int) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(sv.REPO)}
    argv = ["local", "--aws-port", "0", "--api-port", "0", "--concurrency", str(concurrency),
            "--exit-with-parent"]
    code = f"import sys; from modelsync.cli import main; sys.exit(main({argv!r}))"  # `modelsync local ...`
    proc = subprocess.Popen([sys.executable, "-c", code],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                            cwd=str(sv.REPO))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=30)
        raise RuntimeError(f"modelsync local exited ({proc.returncode}) before its ready line")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _load(api: str, row: list[float], seconds: float) -> tuple[list[float], int, float]:
    """8 clients for ``seconds``: (latencies of the 200s, errors, elapsed)."""
    url = urllib.parse.urlsplit(api)
    body = json.dumps({"instances": [row]})
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}
    lat: list[list[float]] = [[] for _ in range(CLIENTS)]
    errors = [0] * CLIENTS
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        while time.monotonic() < stop_at:
            t0 = time.perf_counter()
            try:
                conn.request("POST", f"/models/{sv.MODEL}/predict", body, headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
                if resp.getheader("Connection", "").lower() == "close" or resp.version == 10:
                    conn.close()
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
            if ok:
                lat[i].append(time.perf_counter() - t0)
            else:
                errors[i] += 1
        conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for xs in lat for x in xs], sum(errors), time.monotonic() - t0


def section(quick: bool) -> Section:
    import boto3

    seconds = 5.0 if quick else 15.0
    doc, row, _ = sv.forest()
    rows, targets = [], []
    for concurrency in (DEFAULT_CONCURRENCY, 1):
        proc, info = _start(concurrency)
        try:
            s3 = boto3.client("s3", endpoint_url=info["aws_endpoint"], region_name=info["region"],
                              aws_access_key_id="testing", aws_secret_access_key="testing")
            sv.publish(s3, info["bucket"], info["api"], doc)
            _load(info["api"], row, 1.0)  # warm-up: every execution environment created, the model loaded
            lat, errors, elapsed = _load(info["api"], row, seconds)
        finally:
            _stop(proc)
        rps = len(lat) / elapsed if elapsed else 0.0
        p50 = sv.percentile(lat, 0.5) if lat else None
        p99 = sv.percentile(lat, 0.99) if lat else None
        rows.append([f"--concurrency {concurrency}" + (" (default)" if concurrency == DEFAULT_CONCURRENCY
                                                       else ""),
                     f"{rps:.0f}", run.fmt_s(p50), run.fmt_s(p99), str(len(lat)), str(errors)])
        if concurrency == DEFAULT_CONCURRENCY:
            targets.append(Target(f"local stack: single-row requests/s with {CLIENTS} clients (p50 / p99), "
                                  "reported", f"{rps:.0f}/s ({run.fmt_s(p50)} / {run.fmt_s(p99)})",
                                  "reported" if not errors else f"{errors} errors"))
    body = [f"{CLIENTS} clients, one keep-alive connection each, {seconds:g} s after a 1 s warm-up; one row "
            "per request through `modelsync local` (API Gateway -> Score handler -> scorer).\n",
            run.table(["stack", "requests/s", "p50", "p99", "requests", "errors"], rows), "",
            "The handlers share one Python process (the GIL): concurrency overlaps their waits (moto, "
            "S3, DynamoDB), not their CPU work.", ""]
    return Section("Local stack API throughput", "\n".join(body), targets)

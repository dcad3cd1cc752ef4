"""Risk-lookup latency of ``distillguard serve`` under a steady load from another process.

Starts a Valkey and the API (as ``distillguard serve`` runs it), seeds account risks,
creates a ``service`` key, then runs the load in a separate process (this script with
``--load``): open-loop, a fixed request rate spread over a few keep-alive connections
(stdlib ``http.client``, one thread each), loopback only, for a bounded time.
Latency is measured per request from send to last byte of the response.

    .venv/bin/python bench/api_latency.py --rate 1000 --duration 30

Prints figures; asserts nothing (target: p99 <= 10 ms at 1,000 requests/s).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MAX_RATE = 20_000
MAX_DURATION_S = 300


def run_load(
    port: int, key: str, rate: float, duration: float, connections: int, accounts: int
) -> dict[str, object]:
    """Each connection sends at ``rate / connections`` on its own schedule (open loop)."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    late = [0.0] * connections
    interval = connections / rate
    headers = {"Authorization": f"Bearer {key}"}

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        rng = random.Random(i)
        start = time.perf_counter() + i * interval / connections
        n = int(duration / interval)
        for k in range(n):
            due = start + k * interval
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            else:
                late[i] = max(late[i], now - due)
            # one lookup in ten is an account never seen (the 0.0 / low answer)
            account = f"acct_{rng.randrange(accounts)}" if rng.random() < 0.9 else f"new_{k}"
            t0 = time.perf_counter()
            try:
                conn.request("GET", f"/v1/accounts/{account}/risk", headers=headers)
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            if ok:
                latencies[i].append(time.perf_counter() - t0)
            else:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    merged = sorted(x for per in latencies for x in per)

    def pct(p: float) -> float:
        return merged[min(len(merged) - 1, int(p / 100 * len(merged)))] * 1000 if merged else 0.0

    return {
        "requests_ok": len(merged),
        "errors": sum(errors),
        "elapsed_s": round(elapsed, 2),
        "throughput_rps": round(len(merged) / elapsed, 1),
        "p50_ms": round(pct(50), 3),
        "p90_ms": round(pct(90), 3),
        "p99_ms": round(pct(99), 3),
        "p999_ms": round(pct(99.9), 3),
        "max_ms": round(merged[-1] * 1000, 3) if merged else 0.0,
        "max_sender_lag_ms": round(max(late) * 1000, 3),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu(pid: int) -> float:
    """CPU time of a process's live children (uvicorn's worker processes)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        total += sum(cpu_seconds(int(c)) for c in children)
    return total


def seed(redis_url: str, accounts: int) -> str:
    import redis

    from distillguard.records import AccountRisk, Reason, dumps, iso, level_for
    from distillguard.store import schema
    from distillguard.store.apikeys import new_key
    from distillguard.store.writer import AlertWriter

    client = redis.Redis.from_url(redis_url)
    writer = AlertWriter(client)
    rng = random.Random(0)
    now = iso(time.time())
    for lo in range(0, accounts, 10_000):
        risks = []
        for i in range(lo, min(accounts, lo + 10_000)):
            risk = round(rng.random(), 3)
            risks.append(
                AccountRisk(
                    account_id=f"acct_{i}",
                    risk=risk,
                    level=level_for(risk),
                    updated_at=now,
                    reasons=[
                        Reason(
                            signal="cot_elicitation_rate", value=risk, population_percentile=99.0
                        )
                    ],
                )
            )
        writer.write(risks, [], [])
    record, key = new_key("service", "bench")
    client.set(schema.api_key(record.key_id), dumps(record))
    client.close()
    return key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--accounts", type=int, default=100_000, help="risks seeded")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    parser.add_argument("--load", nargs=2, metavar=("PORT", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    rate = min(args.rate, MAX_RATE)
    duration = min(args.duration, MAX_DURATION_S)
    if args.load:
        # Threads waiting on a response must get the GIL back at once, not after the
        # default 5 ms switch interval, or the client's own scheduling is measured.
        sys.setswitchinterval(0.0001)
        result = run_load(
            int(args.load[0]), args.load[1], rate, duration, args.connections, args.accounts
        )
        print(json.dumps(result))
        return

    # test helpers live in the checkout's tests/, not in the product
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from distillguard.infra import free_port, stop_process
    from tests.helpers.live_api import ApiServer, start_valkey

    port = free_port()
    valkey = start_valkey(port, Path(tempfile.mkdtemp(prefix="dg-bench-")))
    redis_url = f"redis://127.0.0.1:{port}/0"
    try:
        key = seed(redis_url, args.accounts)
        with ApiServer(redis_url, workers=args.workers) as api:
            # warm-up: connections, imports, key cache
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--load",
                    str(api.port),
                    key,
                    "--rate",
                    "200",
                    "--duration",
                    "2",
                    "--connections",
                    "2",
                    "--accounts",
                    str(args.accounts),
                ],
                check=True,
                capture_output=True,
            )
            assert api.proc is not None  # started by the with statement
            pid = api.proc.pid
            cpu_before = cpu_seconds(pid)
            cpu_before_children = children_cpu(pid)
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--load",
                    str(api.port),
                    key,
                    "--rate",
                    str(rate),
                    "--duration",
                    str(duration),
                    "--connections",
                    str(args.connections),
                    "--accounts",
                    str(args.accounts),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            server_cpu = cpu_seconds(pid) - cpu_before + children_cpu(pid) - cpu_before_children
    finally:
        stop_process(valkey)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(
        target_rps=rate,
        connections=args.connections,
        accounts=args.accounts,
        workers=args.workers,
        server_cpu_us_per_request=round(server_cpu / max(1, int(result["requests_ok"])) * 1e6, 1),
    )
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"risk lookup, GET /v1/accounts/{{id}}/risk, {rate:.0f} req/s target for "
        f"{duration:.0f} s over {args.connections} keep-alive connections, "
        f"{args.workers} uvicorn worker(s) "
        f"({args.accounts} accounts seeded, 10% unknown)"
    )
    print(
        f"  throughput {result['throughput_rps']} req/s, {result['requests_ok']} ok, "
        f"{result['errors']} errors"
    )
    print(
        f"  latency p50 {result['p50_ms']} ms  p90 {result['p90_ms']} ms  "
        f"p99 {result['p99_ms']} ms  p99.9 {result['p999_ms']} ms  max {result['max_ms']} ms"
    )
    print(
        f"  server CPU {result['server_cpu_us_per_request']} us per request "
        "(less sensitive to other load on the machine than latency)"
    )
    print(f"  load generator fell behind schedule by at most {result['max_sender_lag_ms']} ms")


if __name__ == "__main__":
    main()

"""Run every benchmark of topo's core against one broker and print a summary table.

    python benches/run_all.py            # full size (10,000-queue plan, load and status, 1,000-queue apply)
    python benches/run_all.py --small    # a quick run at small sizes
    python benches/run_all.py --only plan_noop --only load

One private RabbitMQ node is started for all of them (unless ``TOPO_BENCH_URL`` names a broker); each
benchmark runs as its own process (``benches/bench_<name>.py``), prints its measurements as it goes,
and its results come back as JSON. At the end: a Markdown table of the ratios and the machine, the
date and the RabbitMQ version, ready for ``benches/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import broker_url, broker_versions, describe_machine, machine, raw_client

HERE = Path(__file__).resolve().parent
BENCHES = ("plan_noop", "apply_cold", "load", "status")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small sizes, 3 repetitions: a quick run")
    parser.add_argument("--repeat", type=int, help="repetitions for every benchmark (default: each its own)")
    parser.add_argument("--only", action="append", choices=BENCHES, help="run only this one (repeatable)")
    parser.add_argument("--json", metavar="PATH", help="also write every result as one JSON file")
    args = parser.parse_args()
    chosen = [b for b in BENCHES if not args.only or b in args.only]
    results: list[dict[str, Any]] = []
    failed: list[str] = []
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    with broker_url() as url, tempfile.TemporaryDirectory(prefix="topo-bench-results-") as tmp:
        with raw_client(url) as http:
            versions = broker_versions(http)
        env = {**os.environ, "TOPO_BENCH_URL": url}
        for name in chosen:
            out = Path(tmp) / f"{name}.json"
            command = [sys.executable, str(HERE / f"bench_{name}.py"), "--json", str(out)]
            if args.small:
                command.append("--small")
            if args.repeat:
                command += ["--repeat", str(args.repeat)]
            print(f"\n=== bench_{name}.py {' '.join(command[4:])}", flush=True)
            t0 = time.perf_counter()
            done = subprocess.run(command, env=env, check=False)
            print(f"=== bench_{name}.py: exit {done.returncode} after {time.perf_counter() - t0:.0f} s", flush=True)
            if done.returncode != 0 or not out.exists():
                failed.append(name)
                continue
            results.append(json.loads(out.read_text()))
    summary = {"date": started, "machine": machine(), **versions, "small": args.small, "results": results}
    print()
    print(markdown(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"Run {summary['date']}{' (--small)' if summary['small'] else ''}: {describe_machine(summary['machine'])}; "
        f"RabbitMQ {summary['rabbitmq']} on Erlang {summary['erlang']}.",
        "",
        "| benchmark | topo | baseline | median ratio | per-repetition ratio (median) | target |",
        "|---|---|---|---|---|---|",
    ]
    for result in summary["results"]:
        medians = result["medians"]
        for ratio in result["ratios"]:
            target = ""
            if ratio["target"] is not None:
                target = f"<= {ratio['target']:g}x {'met' if ratio['ratio'] <= ratio['target'] else 'MISSED'}"
            paired = f"{ratio['paired']:.2f}x" if ratio.get("paired") is not None else ""
            lines.append(
                f"| {result['name']} | {ratio['label']} {medians[ratio['label']]:.3f} s "
                f"| {ratio['baseline']} {medians[ratio['baseline']]:.3f} s | {ratio['ratio']:.2f}x | {paired} "
                f"| {target} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

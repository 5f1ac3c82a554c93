"""Run the benchmarks against real servers: a private stack on free ports, or the environment's.

    python -m bench                  every suite, then the table; exits 0 when figures miss
                                     (benchmarks inform), 1 only when a suite crashed
    python -m bench rag hybrid       only those suites
    python -m bench --check          the table of the results file, no rerun; exits 1 when a
                                     figure missed, 2 when there are no results
    --results PATH                   the results file (else LORAG_BENCH_RESULTS, else
                                     .lorag/bench/results.jsonl)

LORAG_TEST_USE_ENV=1 uses the LORAG_* endpoints as they are.

Adding a suite (bench/boundaries.py, say):
  1. write `async def run(settings: Settings, work: Path) -> list[Figure]` in its module; build
     every figure with `bench.report.figure(name, value, unit, baseline=..., target=...)` and take
     each target from an issue's text, citing it in a comment and in `issue=` (`at_least(0.5,
     of="ratio", issue=17)`); a figure with no target in any issue gets `target=None`;
  2. register it in SUITES below: `"boundaries": Suite("bench.boundaries")`, with
     `servers=False` when it needs no Kafka, Postgres or S3 (the stack is then not started for
     it alone). Modules are imported when their suite runs, so `--check` loads no torch.
The runner stamps each figure with its suite and time, prints its JSON line, records the suite's
lines in the results file, and prints the table once every suite is done. A suite that raises
records a missed `<suite>.completed` figure and the run goes on to the next suite.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import tempfile
import traceback
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import report, results
from lorag_core.settings import Settings


@dataclass(frozen=True)
class Suite:
    module: str  # has `async def run(settings: Settings, work: Path) -> list[Figure]`
    servers: bool = True  # needs real Kafka, Postgres and S3

    def run(self, settings: Settings, work: Path) -> Coroutine[Any, Any, list[report.Figure]]:
        run: Callable[[Settings, Path], Coroutine[Any, Any, list[report.Figure]]]
        run = importlib.import_module(self.module).run
        return run(settings, work)


SUITES = {
    "events": Suite("bench.events"),
    "migration": Suite("bench.migration"),
    "rag": Suite("bench.rag"),
    "lora": Suite("bench.lora"),
    "serving": Suite("bench.serving"),
    "hybrid": Suite("bench.hybrid"),
    "estimator": Suite("bench.estimator", servers=False),
    "gateway": Suite("bench.gateway"),
    "boundaries": Suite("bench.boundaries"),
    "replicas": Suite("bench.replicas"),
    "tracing": Suite("bench.tracing"),
}


@contextmanager
def servers() -> Iterator[None]:
    """Real servers for the run, with the schema migrated."""
    from lorag_core.db import migrations
    from tests.support.stack import export, real_servers

    with real_servers() as (endpoints, _):
        export(endpoints)
        migrations.upgrade(Settings().postgres_dsn)
        yield


def run_suite(name: str, work: Path) -> list[report.Figure]:
    """One suite's figures, stamped; a crash becomes a missed figure, with its traceback shown."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        figures = asyncio.run(SUITES[name].run(Settings(), work))
        strays = [f for f in figures if not isinstance(f, report.Figure)]
        if strays:
            raise TypeError(f"figures must come from bench.report.figure(), got {strays[0]!r}")
    except Exception as error:
        traceback.print_exc()
        figures = [report.crashed(name, error)]
    return report.stamped(figures, name, at)


def run(wanted: list[str], path: Path) -> int:
    """Run the suites, print and record each figure line, end with the table."""
    lines = []
    context = servers() if any(SUITES[n].servers for n in wanted) else nullcontext()
    with context:
        work = Path(tempfile.mkdtemp(prefix="lorag-bench-"))
        for name in wanted:
            suite_lines = [f.line() for f in run_suite(name, work)]
            for line in suite_lines:
                print(json.dumps(line), flush=True)
            results.record(path, name, suite_lines)
            lines += suite_lines
    print("\n" + results.table(lines))
    print(f"figures recorded in {path}; `make bench-check` exits 1 if any missed")
    crashed = any("crashed" in line for line in lines)
    return 1 if crashed else 0  # misses inform (exit 0); a suite that crashed is a bug


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("suites", nargs="*", metavar="SUITE", help=f"of {', '.join(SUITES)}")
    parser.add_argument("--check", action="store_true", help="judge the results file only")
    parser.add_argument("--results", help="the results file (JSON lines)")
    args = parser.parse_args(argv)
    path = results.results_path(args.results)
    if args.check:
        return results.check(path)
    unknown = sorted(set(args.suites) - set(SUITES))
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; choose from {sorted(SUITES)}")
    return run(args.suites or list(SUITES), path)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

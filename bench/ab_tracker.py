"""An A/B of the tracker as a process: a git revision's lorag-core against the work tree's.

`python -m bench.ab_tracker REV [--rounds N]`: on a private stack, each round projects `bench
events`' 100,000 progress events twice, once with the tracker process importing REV's lorag-core
(checked out into a temporary git worktree and put first on the process's PYTHONPATH) and once
with the work tree's, in alternating order, then runs the raw baseline. It prints a JSON line per
round and one with the medians. Only lorag-core is swapped, where the tracker lives; the process
hosting it (the migration-service) is the work tree's. An A/B for a change to the tracker's path
(this machine's speed drifts by tens of per cent within minutes), not a judged figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import events
from bench.__main__ import servers
from lorag_core.settings import Settings
from tests.support.processes import start_service

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """REV's tree in a temporary git worktree, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="ab-tracker-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(folder), rev],
                   check=True)  # fmt: skip
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
                       check=False)  # fmt: skip


async def ab(rev_tree: Path, rounds: int, work: Path) -> dict[str, list[float]]:
    settings = Settings()
    rates: dict[str, list[float]] = {"rev": [], "tree": [], "raw": []}
    sides = {"rev": {"PYTHONPATH": str(rev_tree / "libs/lorag-core/src")}, "tree": {}}
    for n in range(rounds):
        for side in ("rev", "tree") if n % 2 == 0 else ("tree", "rev"):
            env = sides[side]
            events.start_service = lambda name, logs, env=env: start_service(name, logs, **env)
            rate = await events.projection_rate(settings, events.progress_events(), work / side)
            rates[side].append(rate)
        rates["raw"].append(await events.raw_executemany_rate(settings, events.progress_events()))
        print(json.dumps({"round": n + 1, **{k: round(v[-1]) for k, v in rates.items()}}))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rev", help="the git revision to compare the work tree against")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    with checkout(args.rev) as tree, servers(), tempfile.TemporaryDirectory() as work:
        rates = asyncio.run(ab(tree, args.rounds, Path(work)))
    medians = {f"{k}_median": round(statistics.median(v)) for k, v in rates.items()}
    ahead = sum(t > r for t, r in zip(rates["tree"], rates["rev"], strict=True))
    print(json.dumps({"rev": args.rev, **medians, "tree_ahead_rounds": ahead,
                      "rounds": args.rounds, "unit": "events/s"}))  # fmt: skip


if __name__ == "__main__":
    main()

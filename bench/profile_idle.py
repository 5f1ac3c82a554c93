"""What an idle service costs the machine: its CPU and context switches while no job runs.

`python -m bench.profile_idle [--seconds S] [--settle S]`: a private stack, the tracker and the
rag-service as `bench rag` starts them; once they are ready and have settled, each process's CPU
(cores, summed over its threads) and context switches a second over S seconds, one process after
the other. A JSON line per service. A profile, not a judged figure: the waits an idle service
makes (Kafka polls, heartbeats, LISTEN connections) also wake it while a job runs, when every
wake-up takes a core from the job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
from pathlib import Path

from tests.support.processes import start_service

TICK = os.sysconf("SC_CLK_TCK")


def usage(pid: int) -> tuple[float, float, int]:
    """CPU seconds of the whole process and of its main thread, and its context switches."""
    cpu = main = 0.0
    switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICK
        cpu += seconds
        main += seconds if int(tid) == pid else 0.0
        switches += sum(int(v.split()[-1]) for v in status.splitlines() if "ctxt_switches" in v)
    return cpu, main, switches


async def measure(name: str, pid: int, seconds: float) -> dict[str, object]:
    cpu, main, switches = usage(pid)
    await asyncio.sleep(seconds)
    cpu_after, main_after, switches_after = usage(pid)
    return {
        "service": name,
        "idle_cores": round((cpu_after - cpu) / seconds, 4),
        "main_thread_cores": round((main_after - main) / seconds, 4),
        "switches_per_s": round((switches_after - switches) / seconds, 1),
        "seconds": seconds,
    }


async def main_async(seconds: float, settle: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="lorag-idle-"))
    tracker = await asyncio.to_thread(start_service, "lorag_migration", work / "logs")
    rag = await asyncio.to_thread(
        start_service, "lorag_rag", work / "logs", LORAG_CHROMA_PATH=str(work / "chroma")
    )
    try:
        await asyncio.sleep(settle)
        for name, service in (("migration-service", tracker), ("rag-service", rag)):
            print(json.dumps(await measure(name, service.process.pid, seconds)), flush=True)
    finally:
        await asyncio.to_thread(rag.stop)
        await asyncio.to_thread(tracker.stop)


def main() -> None:
    from bench.__main__ import servers

    parser = argparse.ArgumentParser(prog="python -m bench.profile_idle")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, per service")
    parser.add_argument("--settle", type=float, default=10.0, help="waited after both are ready")
    args = parser.parse_args()
    with servers():
        asyncio.run(main_async(args.seconds, args.settle))


if __name__ == "__main__":
    main()

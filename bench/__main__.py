"""Run every benchmark against real servers: a private stack on free ports, or the environment's.

LORAG_TEST_USE_ENV=1 uses the LORAG_* endpoints as they are.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

from bench import events, gateway, hybrid, lora, migration, rag
from lorag_core.db import migrations
from lorag_core.settings import Settings
from tests.support.stack import export, real_servers

SUITES = {
    "events": events.run,
    "migration": migration.run,
    "rag": rag.run,
    "lora": lora.run,
    "hybrid": hybrid.run,
    "gateway": gateway.run,
}


def main(argv: list[str]) -> int:
    wanted = argv or list(SUITES)
    unknown = set(wanted) - set(SUITES)
    if unknown:
        print(
            f"unknown benchmark(s) {sorted(unknown)}; choose from {sorted(SUITES)}", file=sys.stderr
        )
        return 2
    with real_servers() as (endpoints, _):
        export(endpoints)
        settings = Settings()
        migrations.upgrade(settings.postgres_dsn)
        work = Path(tempfile.mkdtemp(prefix="lorag-bench-"))
        for name in wanted:
            for figure in asyncio.run(SUITES[name](settings, work)):
                print(json.dumps(figure), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

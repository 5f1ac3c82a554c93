"""Export every contract's JSON Schema to files, so contract changes show up in review.

Run `python -m lorag_core.contracts.schemas` after changing a contract; a unit test fails while
the files and the code disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lorag_core.contracts import EVENTS

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def render_schemas() -> dict[str, str]:
    """File name -> JSON Schema text for every event contract, and the AsyncAPI document."""
    from lorag_core.contracts.asyncapi import asyncapi_document

    rendered = {"asyncapi.json": json.dumps(asyncapi_document(), indent=2, sort_keys=True) + "\n"}
    for event in EVENTS:
        schema = event.model_json_schema(mode="validation")
        schema["x-topic"] = event.topic
        rendered[f"{event.__name__}.v{schema_version(event)}.json"] = (
            json.dumps(schema, indent=2, sort_keys=True) + "\n"
        )
    return rendered


def schema_version(event: type) -> int:
    return int(event.model_fields["schema_version"].default)  # type: ignore[attr-defined]


def main() -> int:
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    wanted = render_schemas()
    for stale in set(p.name for p in SCHEMA_DIR.glob("*.json")) - set(wanted):
        (SCHEMA_DIR / stale).unlink()
    for name, text in wanted.items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"wrote {len(wanted)} schemas to {SCHEMA_DIR}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

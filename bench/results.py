"""The results file the runner keeps, the closing table, and the check `make bench-check` runs.

The file (JSON lines, one per figure, as printed) holds the latest figures of every suite: a run
replaces the lines of the suites it ran and keeps the others, so `python -m bench rag` after a fix
updates rag's figures without rerunning the rest. Each line says when it was measured.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path(".lorag/bench/results.jsonl")
PASS_TEXT = {True: "pass", False: "MISS", None: "-"}


def results_path(given: str | Path | None = None) -> Path:
    """--results, else LORAG_BENCH_RESULTS, else .lorag/bench/results.jsonl (git-ignored)."""
    return Path(given or os.environ.get("LORAG_BENCH_RESULTS") or DEFAULT_PATH)


def load(path: Path) -> list[dict[str, Any]]:
    """The figure lines of a results file (blank lines skipped)."""
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def record(path: Path, suite: str, lines: list[dict[str, Any]]) -> None:
    """Replace `suite`'s lines in the file with `lines`, keeping the other suites' (atomic)."""
    kept = [line for line in load(path) if line.get("suite") != suite] if path.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text("".join(json.dumps(line) + "\n" for line in kept + lines))
    os.replace(staging, path)


def target_text(target: dict[str, Any] | None) -> str:
    """A target line's condition as a reader writes it: `ratio >= 0.5`, `0.75 <= ratio <= 1.25`."""
    if target is None:
        return "-"
    if "all" in target:
        return " and ".join(target_text(t) for t in target["all"])
    if target["op"] == "between":
        low, high = target["value"]
        return f"{low:g} <= {target['of']} <= {high:g}"
    return f"{target['of']} {target['op']} {target['value']:g}"


def _number(x: Any) -> str:
    return "-" if x is None else f"{x:,}" if isinstance(x, int) else f"{x:,.4g}"


def table(lines: list[dict[str, Any]]) -> str:
    """The closing table: figure, value, baseline, ratio, target, pass; then the tally."""
    head = ("figure", "value", "baseline", "ratio", "target", "pass")
    rows = [
        (
            line["figure"],
            f"{_number(line['value'])} {line.get('unit') or ''}".rstrip(),
            _number(line.get("baseline")),
            _number(line.get("ratio")),
            target_text(line.get("target")),
            PASS_TEXT[line.get("pass")],
        )
        for line in lines
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*head).rstrip(), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row).rstrip() for row in rows]
    verdicts = [line.get("pass") for line in lines]
    out.append(
        f"{verdicts.count(True)} passed, {verdicts.count(False)} missed, "
        f"{verdicts.count(None)} informational"
    )
    return "\n".join(out)


def check(path: Path) -> int:
    """Print the table of a results file; 0 when no figure missed, 1 when one did, 2 if none."""
    if not path.exists() or not (lines := load(path)):
        print(f"no benchmark results in {path}: run `make bench` (or `python -m bench SUITE`)")
        return 2
    print(table(lines))
    measured = {line.get("suite"): line.get("measured_at") for line in lines}
    print("measured: " + ", ".join(f"{suite} at {at}" for suite, at in measured.items()))
    return 1 if any(line.get("pass") is False for line in lines) else 0

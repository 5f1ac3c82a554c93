"""`python -m lorag_local up|down|status [--json] [--state-dir DIR]`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from .stack import LocalStack, LocalStackError


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m lorag_local", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--state-dir", type=Path, help="default: $LORAG_STATE_DIR or ./.lorag/local"
    )
    args = parser.parse_args(argv)
    stack = LocalStack.from_env(args.state_dir)
    started = time.monotonic()
    try:
        if args.command == "up":
            # Progress goes to stderr so that --json output stays parseable.
            endpoints = stack.up(lambda line: print(line, file=sys.stderr, flush=True))
            if args.json:
                print(json.dumps(dataclasses.asdict(endpoints), indent=2))
            else:
                for key, value in dataclasses.asdict(endpoints).items():
                    print(f"{key}={value}")
                print(
                    f"up in {time.monotonic() - started:.1f} s; logs: {stack.state_dir}/logs",
                    file=sys.stderr,
                )
            return 0
        if args.command == "down":
            stack.down()
            print(f"down in {time.monotonic() - started:.1f} s", file=sys.stderr)
            return 0
        status = stack.status()
    except LocalStackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        for name, info in status.items():
            state = "ready" if info["ready"] else "running" if info["running"] else "stopped"
            print(f"{name:9} {state:8} {info['endpoint']:22} pid={info['pid']}  {info['log']}")
    return 0 if all(info["ready"] for info in status.values()) else 3


if __name__ == "__main__":
    sys.exit(main())

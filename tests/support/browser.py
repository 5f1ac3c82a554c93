"""Debian's chromium for the browser tests, driven by Playwright."""

from __future__ import annotations

import shutil

import pytest

ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def chromium() -> str:
    """Debian's chromium, installed by `make browser`: without it these tests fail, never skip."""
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not on PATH: run `make browser` (Debian's chromium package)")
    return found

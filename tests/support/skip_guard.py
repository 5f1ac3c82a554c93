"""A pytest plugin: a run with a skipped or xfailed test fails unless an allow-list says why.

A skip passes silently under `pytest -ra`, so a suite could go green while a whole area (the
browser tests, once) never ran. Here every skip and xfail is collected; any whose node id no
entry of the allow-list (`skip_allowlist` ini option, default tests/skip-allowlist.toml) matches
turns a passing run into a failing one, and the summary names each test with its skip reason.
xfails count too: an expected failure is a test that does not prove what its name says.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DEFAULT_ALLOWLIST = "tests/skip-allowlist.toml"


def load_allowlist(path: Path) -> dict[str, str]:
    """Node-id patterns (fnmatch) to their reasons; a missing file allows nothing."""
    if not path.is_file():
        return {}
    try:
        entries = tomllib.loads(path.read_text()).get("allow", {})
    except tomllib.TOMLDecodeError as exc:
        raise pytest.UsageError(f"{path}: not valid TOML: {exc}") from None
    if not isinstance(entries, dict):
        raise pytest.UsageError(f"{path}: [allow] must map test node ids to reasons")
    blank = [pattern for pattern, reason in entries.items() if not str(reason).strip()]
    if blank:
        raise pytest.UsageError(f"{path}: every allowed skip needs its reason: {blank}")
    return {str(pattern): str(reason) for pattern, reason in entries.items()}


@dataclass(eq=False)  # a plugin must be hashable
class SkipGuard:
    """Registered once per run: collects the skips the allow-list does not cover, fails the run."""

    allowlist_path: Path
    allowed: dict[str, str]
    unallowed: list[tuple[str, str]] = field(default_factory=list)

    def allows(self, nodeid: str) -> bool:
        return any(fnmatch.fnmatchcase(nodeid, pattern) for pattern in self.allowed)

    def see(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if report.skipped and not self.allows(report.nodeid):
            self.unallowed.append((report.nodeid, reason_of(report)))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self.see(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.see(report)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """A run that would pass fails when a test skipped without an allow-listed reason."""
        if self.unallowed and exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Name every skip that made the run fail, and where to allow one."""
        if not self.unallowed:
            return
        terminalreporter.section("skips not on the allow-list", sep="=", red=True, bold=True)
        for nodeid, reason in self.unallowed:
            terminalreporter.line(f"SKIP NOT ALLOWED {nodeid}: {reason}")
        terminalreporter.line(
            f"{len(self.unallowed)} test(s) skipped without an allowed reason, so the run fails."
            f" Make them run, or add each node id with its reason to {self.allowlist_path}."
        )


def reason_of(report: pytest.CollectReport | pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return f"xfail: {report.wasxfail or 'no reason given'}"
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "skip_allowlist",
        "TOML file whose [allow] table maps test node ids (fnmatch patterns) to why they may skip",
        default=DEFAULT_ALLOWLIST,
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.rootpath / str(config.getini("skip_allowlist"))
    config.pluginmanager.register(SkipGuard(path, load_allowlist(path)), "skip-guard")

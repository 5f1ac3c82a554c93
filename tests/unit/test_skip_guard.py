"""The skip guard: a skip or xfail off the allow-list fails the run; a listed one passes."""

from __future__ import annotations

import pytest

TESTS = """
import pytest

def test_runs():
    pass

def test_listed():
    pytest.skip("needs a GPU")

def test_unlisted():
    pytest.skip("chromium is missing")

@pytest.mark.xfail(reason="known broken")
def test_expected_to_fail():
    assert False
"""


def run(pytester: pytest.Pytester, allow: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_some=TESTS)
    pytester.makefile(".toml", allow=allow)
    pytester.makeini(
        "[pytest]\nskip_allowlist = allow.toml\nasyncio_default_fixture_loop_scope = function\n"
    )
    return pytester.runpytest("-p", "tests.support.skip_guard", *args)


def test_an_unlisted_skip_and_an_xfail_fail_the_run_and_are_named(pytester):
    result = run(pytester, '[allow]\n"test_some.py::test_listed" = "GPU-only"\n')
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)
    result.stdout.fnmatch_lines(
        [
            "*skips not on the allow-list*",
            "SKIP NOT ALLOWED test_some.py::test_unlisted: chromium is missing",
            "SKIP NOT ALLOWED test_some.py::test_expected_to_fail: xfail: known broken",
            "2 test(s) skipped without an allowed reason*",
        ]
    )
    assert "test_listed" not in result.stdout.str().split("skips not on the allow-list")[1]


def test_listed_skips_pass_and_patterns_match_node_ids(pytester):
    allow = (
        '[allow]\n"test_some.py::test_*listed" = "GPU-only"\n"*::test_expected*" = "upstream bug"\n'
    )
    result = run(pytester, allow)
    assert result.ret == pytest.ExitCode.OK
    assert "skips not on the allow-list" not in result.stdout.str()


def test_a_skipped_module_counts_as_a_skip(pytester):
    pytester.makepyfile(test_gone='import pytest\npytest.importorskip("no_such_module_x")\n')
    result = run(pytester, "[allow]\n", "-k", "not listed and not expected")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["SKIP NOT ALLOWED test_gone.py: could not import*"])


def test_a_failing_run_keeps_its_own_status(pytester):
    pytester.makepyfile(test_bad="def test_bad():\n    assert False\n")
    result = run(pytester, "[allow]\n")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1, skipped=2, xfailed=1)


def test_an_allowed_skip_needs_its_reason(pytester):
    result = run(pytester, '[allow]\n"test_some.py::test_listed" = " "\n')
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*every allowed skip needs its reason*"])

"""The benchmarks' judging: targets, the closing table and `make bench-check`'s exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench import report, results
from bench.__main__ import main
from bench.report import at_least, at_most, figure, within

REPO = Path(__file__).resolve().parents[2]


def stamped(*figures: report.Figure, suite: str = "demo") -> list[dict]:
    return [f.line() for f in report.stamped(list(figures), suite, "2025-01-01T00:00:00+00:00")]


def test_a_ratio_above_an_at_least_target_passes_and_below_misses() -> None:
    above = figure("projection", 12_000, "events/s", baseline=20_000,
                   target=at_least(0.5, of="ratio", issue=17))  # fmt: skip
    below = figure("projection", 5_600, "events/s", baseline=20_000,
                   target=at_least(0.5, of="ratio", issue=17))  # fmt: skip
    assert (above.ratio, above.passed) == (0.6, True)
    assert (below.ratio, below.passed) == (0.28, False)
    assert above.line()["target"] == {"op": ">=", "value": 0.5, "of": "ratio", "issue": 17}


def test_the_boundary_of_a_target_passes() -> None:
    assert figure("x", 0.5, "", baseline=1.0, target=at_least(0.5, of="ratio")).passed is True
    assert figure("x", 15.0, "ms", target=at_most(15)).passed is True


def test_an_at_most_target_on_the_value() -> None:
    assert figure("query.p50_ms", 12.8, "ms", target=at_most(15, issue=4)).passed is True
    missed = figure("query.p50_ms", 16.9, "ms", baseline=3.0, target=at_most(15, issue=4))
    assert missed.passed is False
    assert missed.ratio == pytest.approx(5.633)  # the ratio is reported, the value is judged


def test_every_condition_of_a_compound_target_must_hold() -> None:
    target = (at_least(2000, issue=2), at_least(0.5, of="ratio", issue=17))
    fast_but_far = figure("projection", 11_788, "events/s", baseline=42_100, target=target)
    assert fast_but_far.passed is False
    assert fast_but_far.line()["target"]["all"][0] == {"op": ">=", "value": 2000, "of": "value",
                                                       "issue": 2}  # fmt: skip
    assert figure("projection", 30_000, "events/s", baseline=42_100, target=target).passed


def test_within_judges_both_sides_of_the_baseline() -> None:
    assert figure("est", 1.3, "s", baseline=1.0, target=within(0.35)).passed is True
    assert figure("est", 0.5, "s", baseline=3.15, target=within(0.35)).passed is False
    assert figure("est", 1.4, "s", baseline=1.0, target=within(0.35)).passed is False


def test_a_figure_without_target_is_informational() -> None:
    line = figure("peak_rss_mib", 1192.4, "MiB", baseline=938).line()
    assert (line["target"], line["pass"]) == (None, None)
    assert line["value"] == 1192 and line["ratio"] == pytest.approx(1.271)


def test_a_given_ratio_is_judged_instead_of_value_over_baseline() -> None:
    reingest = figure("reingest.seconds", 2.77, "s", baseline=31.0, ratio=31.0 / 2.77,
                      ratio_is="baseline / value (times faster)",
                      target=at_least(20, of="ratio", issue=4))  # fmt: skip
    assert (reingest.ratio, reingest.passed) == (11.19, False)


def test_a_missing_measure_misses_and_a_ratio_target_needs_a_baseline() -> None:
    assert figure("x", None, "ms", target=at_most(15)).passed is False
    with pytest.raises(ValueError, match="ratio target needs a baseline"):
        figure("x", 3.0, "ms", target=at_least(0.5, of="ratio"))


def test_the_table_has_every_figure_its_target_and_verdict() -> None:
    lines = stamped(
        figure("state_projection.events_per_s", 11_788, "events/s", baseline=42_100,
               target=at_least(0.5, of="ratio", issue=17)),
        figure("rag_query.p50_ms", 12.8, "ms", target=at_most(15, issue=4)),
        figure("estimator.seconds@2x256", 0.6, "s", baseline=0.5, target=within(0.35)),
        figure("peak_rss_mib", 1192, "MiB"),
    )  # fmt: skip
    rows = results.table(lines).splitlines()
    assert rows[0].split() == ["figure", "value", "baseline", "ratio", "target", "pass"]
    assert "11,788 events/s" in rows[2] and "42,100" in rows[2] and "ratio >= 0.5" in rows[2]
    assert rows[2].split()[-1] == "MISS"
    assert "value <= 15" in rows[3] and rows[3].split()[-1] == "pass"
    assert "0.65 <= ratio <= 1.35" in rows[4] and rows[4].split()[-1] == "pass"
    assert rows[5].split()[-1] == "-"
    assert rows[-1] == "2 passed, 1 missed, 1 informational"


def test_recording_a_suite_replaces_only_its_own_lines(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    results.record(path, "rag", stamped(figure("a", 1, "s"), suite="rag"))
    results.record(path, "lora", stamped(figure("b", 2, "s"), suite="lora"))
    results.record(path, "rag", stamped(figure("c", 3, "s"), suite="rag"))
    assert [(line["suite"], line["figure"]) for line in results.load(path)] == [
        ("lora", "b"), ("rag", "c"),
    ]  # fmt: skip


def write(path: Path, *figures: report.Figure) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in stamped(*figures)))
    return path


def test_check_exits_1_on_a_miss_0_when_all_pass_and_2_without_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passing = figure("p50_ms", 12.0, "ms", target=at_most(15, issue=4))
    missing = figure("ratio", 0.28, "", baseline=1.0, target=at_least(0.5, of="ratio"))
    assert main(["--check", "--results", str(write(tmp_path / "ok.jsonl", passing))]) == 0
    failing = write(tmp_path / "bad.jsonl", passing, missing, figure("info", 1, "MiB"))
    assert main(["--check", "--results", str(failing)]) == 1
    assert "MISS" in capsys.readouterr().out
    assert main(["--check", "--results", str(tmp_path / "none.jsonl")]) == 2


def test_make_bench_check_fails_on_a_failing_results_file(tmp_path: Path) -> None:
    failing = write(tmp_path / "bad.jsonl", figure("x", 20.0, "ms", target=at_most(15)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = subprocess.run(
        ["make", "--no-print-directory", "bench-check"], cwd=REPO,
        env={**env, "LORAG_BENCH_RESULTS": str(failing)}, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    # python -m bench --check exits 1; make reports any failed recipe as 2.
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bench-check] Error 1" in done.stderr
    assert "MISS" in done.stdout


def test_a_crashed_suite_is_recorded_as_a_miss() -> None:
    line = stamped(report.crashed("rag", RuntimeError("boom")), suite="rag")[0]
    assert (line["figure"], line["pass"]) == ("rag.completed", False)
    assert "boom" in line["crashed"]


FAKE_SUITE: list[report.Figure] | Exception = []


async def run(settings: object, work: Path) -> list[report.Figure]:
    """A suite for the runner tests (registered by module name, like bench/*.py)."""
    if isinstance(FAKE_SUITE, Exception):
        raise FAKE_SUITE
    return FAKE_SUITE


def test_the_runner_records_a_suite_prints_lines_and_the_table_and_exits_0_on_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import __main__ as runner

    monkeypatch.setattr(runner, "SUITES", {"fake": runner.Suite(__name__, servers=False)})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the run's work folder
    monkeypatch.setattr(sys.modules[__name__], "FAKE_SUITE",
                        [figure("slow", 20.0, "ms", target=at_most(15))])  # fmt: skip
    path = tmp_path / "results.jsonl"
    assert main(["fake", "--results", str(path)]) == 0  # misses inform
    out = capsys.readouterr().out
    printed = json.loads(out.splitlines()[0])
    assert (printed["suite"], printed["figure"], printed["pass"]) == ("fake", "slow", False)
    assert "0 passed, 1 missed, 0 informational" in out
    assert results.load(path) == [printed]
    assert main(["--check", "--results", str(path)]) == 1


def test_a_crashing_suite_is_recorded_as_missed_and_the_run_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import __main__ as runner

    monkeypatch.setattr(runner, "SUITES", {"fake": runner.Suite(__name__, servers=False)})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the run's work folder
    monkeypatch.setattr(sys.modules[__name__], "FAKE_SUITE", RuntimeError("no model"))
    path = tmp_path / "results.jsonl"
    assert main(["fake", "--results", str(path)]) == 1
    [line] = results.load(path)
    assert (line["figure"], line["pass"]) == ("fake.completed", False)


def test_a_figure_not_made_by_report_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import __main__ as runner

    monkeypatch.setattr(runner, "SUITES", {"fake": runner.Suite(__name__, servers=False)})
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the run's work folder
    monkeypatch.setattr(sys.modules[__name__], "FAKE_SUITE", [{"figure": "raw dict"}])
    path = tmp_path / "results.jsonl"
    assert main(["fake", "--results", str(path)]) == 1
    assert "bench.report.figure" in results.load(path)[0]["crashed"]

"""Figures that judge themselves: every benchmark builds its figures here, and only here.

A figure is one measured value with its unit, an optional in-run baseline and ratio, and an
optional target; `figure()` rounds it and decides `pass` (true, false, or null when there is no
target), so every suite prints the same JSON line and no suite judges on its own.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Of = Literal["value", "ratio"]


@dataclass(frozen=True)
class Condition:
    """One comparison: `of` (the figure's value or its ratio) `op` `value`."""

    op: Literal[">=", "<=", "between"]
    value: float | tuple[float, float]
    of: Of = "value"
    issue: int | None = None  # the issue whose text sets this target

    def holds(self, measured: float | None) -> bool:
        """Whether `measured` meets the condition; a missing measure never does."""
        if measured is None:
            return False
        if isinstance(self.value, tuple):
            low, high = self.value
            return low <= measured <= high
        return measured >= self.value if self.op == ">=" else measured <= self.value

    def as_json(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"op": self.op, "value": value, "of": self.of, "issue": self.issue}


def at_least(value: float, *, of: Of = "value", issue: int | None = None) -> Condition:
    """The figure (or its ratio) must be at least `value`."""
    return Condition(">=", value, of, issue)


def at_most(value: float, *, of: Of = "value", issue: int | None = None) -> Condition:
    """The figure (or its ratio) must be at most `value`."""
    return Condition("<=", value, of, issue)


def within(error: float, *, issue: int | None = None) -> Condition:
    """Within ±error of the baseline: the ratio lies in [1 - error, 1 + error]."""
    return Condition("between", (round(1 - error, 6), round(1 + error, 6)), "ratio", issue)


Target = Condition | tuple[Condition, ...] | None


@dataclass(frozen=True)
class Figure:
    """One judged figure; `line()` is what is printed and written to the results file."""

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_is: str | None = None
    ratio: float | None = None
    ratio_is: str | None = None
    conditions: tuple[Condition, ...] = ()
    passed: bool | None = None
    n: int | None = None
    suite: str | None = None
    measured_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def target_json(self) -> dict[str, Any] | None:
        """null, one condition, or {"all": [...]} when every one of several must hold."""
        if not self.conditions:
            return None
        if len(self.conditions) == 1:
            return self.conditions[0].as_json()
        return {"all": [c.as_json() for c in self.conditions]}

    def line(self) -> dict[str, Any]:
        out: dict[str, Any] = {"suite": self.suite, "figure": self.name, "value": self.value,
                               "unit": self.unit, "baseline": self.baseline}  # fmt: skip
        if self.baseline_is:
            out["baseline_is"] = self.baseline_is
        out["ratio"] = self.ratio
        if self.ratio_is:
            out["ratio_is"] = self.ratio_is
        out["target"] = self.target_json()
        out["pass"] = self.passed
        if self.n is not None:
            out["n"] = self.n
        return {**out, **self.extra, "measured_at": self.measured_at}


def tidy(x: float | None) -> float | None:
    """Round as printed (integers from 1,000 up, else 4 significant digits); judging uses this."""
    if x is None or not math.isfinite(x):
        return None
    if abs(x) >= 1000:
        return round(x)
    return float(f"{x:.4g}")


def judge(
    value: float | None, ratio: float | None, conditions: tuple[Condition, ...]
) -> bool | None:
    """None without a target; False when a measure the target needs is missing."""
    if not conditions:
        return None
    measured = {"value": value, "ratio": ratio}
    return all(c.holds(measured[c.of]) for c in conditions)


def figure(
    name: str,
    value: float | None,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_is: str | None = None,
    ratio: float | None = None,
    ratio_is: str | None = None,
    target: Target = None,
    n: int | None = None,
    **extra: Any,
) -> Figure:
    """A judged figure. The ratio defaults to value / baseline; pass a `ratio` (and say what it
    is in `ratio_is`) when the natural comparison is another, e.g. "times faster"."""
    conditions = (target,) if isinstance(target, Condition) else tuple(target or ())
    if any(c.of == "ratio" for c in conditions) and ratio is None and baseline is None:
        raise ValueError(f"figure {name!r}: a ratio target needs a baseline or a ratio")
    if ratio is None and value is not None and baseline:
        ratio = value / baseline
    value, baseline, ratio = tidy(value), tidy(baseline), tidy(ratio)
    return Figure(name, value, unit, baseline, baseline_is, ratio, ratio_is, conditions,
                  judge(value, ratio, conditions), n, extra=extra)  # fmt: skip


def stamped(figures: list[Figure], suite: str, measured_at: str) -> list[Figure]:
    """The suite's figures with its name and time (the runner knows them; the suite need not)."""
    return [dataclasses.replace(f, suite=suite, measured_at=measured_at) for f in figures]


def crashed(suite: str, error: BaseException) -> Figure:
    """A suite that crashed measured nothing: it shows as a missed figure, never as a pass."""
    # Not an issue's target: a benchmark that does not finish cannot have met anything.
    return figure(f"{suite}.completed", 0, "suites", target=at_least(1), crashed=repr(error)[:500])


def cpu_seconds(*pids: int) -> float:
    """User plus system CPU seconds the processes have used so far (take a difference)."""
    import psutil

    total = 0.0
    for pid in pids:
        times = psutil.Process(pid).cpu_times()
        total += times.user + times.system
    return total


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, nearest rank: what every latency figure reports."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

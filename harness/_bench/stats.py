"""Statistics of the benchmark: percentiles, medians and paired ratios.

Every comparison in ``bench`` measures its two sides in the same run,
interleaved, repetition by repetition; a ratio is therefore computed per
repetition (the pair shared the machine's state at that moment) and the
median over the repetitions is reported, with the smallest and largest
ratio as the spread.  Absolute figures are kept too but mean little on a
shared machine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

#: Sign-test level under which a ratio short of its goal counts as really short.
SIGNIFICANCE = 0.05

#: Verdicts from best to worst.
VERDICTS = ("ok", "noise", "below", "n/a")


def worst(verdicts: Sequence[str]) -> str:
    """The worst of ``verdicts`` (``n/a`` only if nothing else is there)."""
    real = [v for v in verdicts if v != "n/a"]
    return max(real, key=VERDICTS.index) if real else "n/a"


def median(values: Sequence[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def interleaved(sides: Sequence[T], reps: int) -> Iterator[tuple[int, T]]:
    """``(rep, side)`` for every repetition, alternating the order (ABBA...).

    Alternating cancels a steady drift of the machine (warming caches, other
    work starting or stopping) that would otherwise favour whichever side
    always runs first.
    """
    for rep in range(reps):
        order = sides if rep % 2 == 0 else list(reversed(sides))
        for side in order:
            yield rep, side


@dataclass(frozen=True)
class Ratio:
    """A paired ratio over repetitions: the median and the spread (min, max).

    Ratios are oriented so that higher is better; the median meets the goal
    when it is at least ``goal``.
    """

    median: float | None
    low: float | None
    high: float | None
    samples: tuple[float, ...]
    goal: float

    @property
    def p_below(self) -> float | None:
        """One-sided sign-test p-value that the ratio is really below the goal.

        The chance of at least this many repetitions falling short of the
        goal if each were a coin toss: small only when they fall short
        consistently, whatever the size of the noise.
        """
        if not self.samples:
            return None
        n = len(self.samples)
        below = sum(1 for s in self.samples if s < self.goal)
        chance: float = sum(math.comb(n, k) for k in range(below, n + 1)) / 2**n
        return chance

    @property
    def verdict(self) -> str:
        """``ok`` (the median meets the goal), ``below`` (it does not, and the
        repetitions fall short consistently: sign test p <= ``SIGNIFICANCE``) or
        ``noise`` (it does not, but not consistently)."""
        if self.median is None:
            return "n/a"
        if self.median >= self.goal:
            return "ok"
        p = self.p_below
        return "below" if p is not None and p <= SIGNIFICANCE else "noise"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "median": _round(self.median),
            "min": _round(self.low),
            "max": _round(self.high),
            "samples": [_round(s) for s in self.samples],
            "goal": self.goal,
            "p_below": _round(self.p_below),
            "verdict": self.verdict,
        }


def paired_ratio(
    numerators: Sequence[float | None],
    denominators: Sequence[float | None],
    goal: float = 1.0,
) -> Ratio:
    """Per-repetition ``numerator / denominator``, skipping repetitions missing either side."""
    samples = tuple(
        n / d
        for n, d in zip(numerators, denominators, strict=True)
        if n is not None and d is not None and d > 0 and n > 0
    )
    return Ratio(
        median(samples),
        min(samples, default=None),
        max(samples, default=None),
        samples,
        goal,
    )


def per_rep(
    runs: Sequence[dict[str, Any]], key: str, transform: Callable[[float], float] | None = None
) -> list[float | None]:
    """The value ``key`` of each repetition's record (None where absent)."""
    out: list[float | None] = []
    for run in runs:
        value = run.get(key)
        if value is None:
            out.append(None)
        else:
            out.append(transform(value) if transform else float(value))
    return out


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)

"""The benchmark's printed output: one line per row or run, and the goals at the end."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

SHORT = {"throughput": "tput", "p50": "p50", "p99": "p99", "cpu_per_request": "cpu/req"}
MARK = {True: "MET ", False: "MISS", None: " -- "}


def _ratio(r: dict[str, Any] | None) -> str:
    if not r or r.get("median") is None:
        return f"{'n/a':>16}"
    return f"{r['median']:5.2f} {r['min']:4.2f}-{r['max']:<5.2f}"


def header_line(a: str, b: str) -> str:
    """Column titles of the echo tables."""
    figures = "".join(f"{name + ' (range)':<18}" for name in SHORT.values())
    return f"{'row':<30}{'c':>2} {a[:9]:>9} {b[:12]:>12}  {figures}verdict"


def row_line(r: dict[str, Any], a: str, b: str) -> str:
    """One echo row: both sides' throughput, every ratio with its range, the verdict."""
    head = f"{r['row']:<30}{r['concurrency']:>2}"
    if "error" in r:
        return f"{head} ERROR: {r['error']}"
    if "ratios" not in r:
        return f"{head} unsupported: {r.get('unsupported', '?')}"
    ta, tb = r[a]["throughput"], r[b]["throughput"]
    ratios = "".join(f"{_ratio(r['ratios'].get(k)):<18}" for k in SHORT)
    verdict = r.get("verdict", "")
    if r.get("below"):
        verdict += f" ({', '.join(SHORT[k] for k in r['below'])})"
    errors = r[a]["errors"] + r[b]["errors"]
    tail = f"  errors {errors}" if errors else ""
    return f"{head} {ta or 0:9.0f} {tb or 0:12.0f}  {ratios}{verdict}{tail}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f} ms"


def load_line(r: dict[str, Any]) -> str:
    """One load run: held connections, errors, percentiles, CPU per request."""
    return (
        f"  {r['transport']:<12} {r['clients']} clients: ok {r['ok']}, errors {r['errors']} "
        f"{r['error_types'] or ''}, wrong replies {r['wrong_replies']}, peak handlers "
        f"{r['peak_handlers']}, established at peak {r['established_at_peak']}\n"
        f"  {'':<12} connect p50 {_ms(r['connect_p50'])} p99 {_ms(r['connect_p99'])} "
        f"max {_ms(r['connect_max'])}; all connected after {r['connect_phase'] or 0:.2f} s\n"
        f"  {'':<12} round trip (go -> reply) p50 {_ms(r['roundtrip_p50'])} "
        f"p99 {_ms(r['roundtrip_p99'])} max {_ms(r['roundtrip_max'])}; wall {r['wall']:.2f} s\n"
        f"  {'':<12} CPU per request: driver {r['driver_cpu_per_request'] * 1e6:.0f} µs, "
        f"server {r['server_cpu_per_request'] * 1e6:.0f} µs "
        f"(driver/server {r['driver_over_server'] or 0:.2f})"
    )


def suite_lines(speed: dict[str, Any], overhead: dict[str, Any]) -> list[str]:
    """Wall times of the profile runs, their slowest cases, and per-case overhead."""
    lines = []
    for key in ("jobs1", "jobs2"):
        run = speed.get(key)
        if not run:
            continue
        lines.append(
            f"  {speed['profile']} profile, --jobs {key[-1]}: median {run['wall']:.1f} s "
            f"(runs {', '.join(f'{w:.1f}' for w in run['walls'])} s; {run['cases']} cases; "
            f"exit {run['exit_status']})"
        )
        if run.get("stderr"):
            lines.append(f"    stderr: {run['stderr'].strip().splitlines()[-1]}")
    if speed.get("speedup_jobs2"):
        lines.append(f"  speed-up with --jobs 2: {speed['speedup_jobs2']:.2f}x")
    slowest = speed.get("jobs1", {}).get("slowest", [])
    if slowest:
        lines.append(
            "  slowest cases (serial): "
            + ", ".join(f"{c['id']} {c['duration']:.2f} s" for c in slowest[:5])
        )
    lines.append(f"  per-case overhead ({overhead['runs']} runs each, median / p90):")
    for name in ("empty", "server", "serving", "serving_fast_poll"):
        o = overhead.get(name)
        if o:
            lines.append(
                f"    {name:<18} {o['median_ms']:6.1f} ms / {o['p90_ms']:6.1f} ms  {o['verdicts']}"
            )
    return lines


def _value(value: Any, unit: str) -> str:
    if isinstance(value, float):
        return f"{value:.3g} {unit}"
    return f"{value} {unit}"


def print_goals(goals: Sequence[dict[str, Any]], out: Callable[[str], None]) -> None:
    """The summary: every goal, its measured value and whether it is met."""
    out("\n== goals ==")
    for g in goals:
        line = (
            f"  {MARK[g['met']]} [{g['section']}] {g['name']}: {_value(g['value'], g['unit'])} "
            f"(goal {g['op']} {g['limit']:g})"
        )
        out(line + (f"  -- {g['note']}" if g["note"] else ""))

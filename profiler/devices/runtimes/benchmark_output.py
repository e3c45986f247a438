"""Read what TFLite's `benchmark_model` prints: the timed phase's run count and times (in us).

The tool runs a warm-up phase, then the timed phase, and prints one statistics line per phase,

    count=50 first=390368 curr=390936 min=389982 max=417669 avg=394183 std=4373

(newer releases add `p5=.. median=.. p95=..`; when every run took the same time the line is only
`count=N curr=T`), then a summary line whose wording changed across releases:

    TF 1.12-1.15  Average inference timings in us: Warmup: W, Init: I, no stats: A
    TF 2.0-2.1    Average inference timings in us: Warmup: W, Init: I, Inference: A
    TF 2.2 on     Inference timings in us: Init: I, First inference: F, Warmup (avg): W,
                  Inference (avg): A          (one line)

Lines may carry a logger's prefix (`INFO: `, glog, logcat), and numbers may be in scientific
notation (`avg=2.95034e+06`): C++ streams print doubles with six significant digits. Verbatim
outputs of several releases are the fixtures of tests/test_benchmark_output.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# One phase's statistics: `count=` at the start of the line's text or after a logger's prefix.
_STATS = re.compile(r"(?:^|(?<=[\s\]:]))count=\d")
# With --enable_op_profiling the op profiler prints its own `count=` lines under these labels;
# they summarise per-op timings, not the phases.
_PROFILER_LABEL = re.compile(r"(?:Timings \(microseconds\)|Memory \(bytes\)):\s*$")
_PAIR = re.compile(rf"\b(\w+)=({_NUMBER})")
_SUMMARY = re.compile(r"timings in us:(.*)", re.IGNORECASE)
_SUMMARY_ITEM = re.compile(rf"([A-Za-z][\w ()]*?):\s*({_NUMBER})")
_ERROR = re.compile(r"\bERROR:")


@dataclass(frozen=True)
class BenchmarkOutput:
    count: int                      # inference runs in the timed phase
    avg_us: float                   # mean per-run time of the timed phase, microseconds
    std_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    init_us: float | None = None    # model load + interpreter set-up
    warmup_avg_us: float | None = None
    warmup_count: int | None = None  # runs in the warm-up phase, when its line was printed

    @property
    def avg_ms(self) -> float:
        return self.avg_us / 1000.0


def _stats_lines(text: str) -> list[dict[str, float]]:
    found = []
    for line in text.splitlines():
        m = _STATS.search(line)
        if m and not _PROFILER_LABEL.search(line[:m.start()]):
            found.append({k: float(v) for k, v in _PAIR.findall(line[m.start():])})
    return found


def _summary(text: str) -> dict[str, float] | None:
    """The last summary line as {lower-case label: value}, e.g. {"inference (avg)": 6543.2}."""
    found = None
    for line in text.splitlines():
        m = _SUMMARY.search(line)
        if m:
            found = {k.strip().lower(): float(v) for k, v in _SUMMARY_ITEM.findall(m.group(1))}
    return found


def _first_error(text: str) -> str | None:
    return next((line.strip() for line in text.splitlines() if _ERROR.search(line)), None)


def _fail(reason: str, text: str) -> ValueError:
    error = _first_error(text)
    return ValueError(f"{reason}; it said: {error}" if error else reason)


def _finite(value):
    return value if value is not None and math.isfinite(value) else None


def _phase(stats: dict[str, float]) -> tuple:
    """(avg, std, min, max) of one statistics line; `count=N curr=T` alone: every run took T."""
    if "avg" not in stats and "curr" in stats:
        t = stats["curr"]
        return t, 0.0, t, t
    return stats.get("avg"), stats.get("std"), stats.get("min"), stats.get("max")


def parse_output(text: str) -> BenchmarkOutput:
    """The timed phase of one benchmark_model run, from its stdout and stderr together.

    Raises ValueError with one line saying why when the output has no complete timed phase
    (quoting the tool's first ERROR line when it printed one)."""
    if not text or not text.strip():
        raise ValueError("benchmark_model printed nothing")
    stats, summary = _stats_lines(text), _summary(text)
    if not stats and summary is None:
        raise _fail("no benchmark statistics in benchmark_model's output (no 'count=' line and "
                    "no 'Inference timings in us' summary)", text)
    if not stats:
        raise _fail("benchmark_model printed a summary but no 'count=' line: the number of timed "
                    "runs is unknown", text)
    if len(stats) == 1 and summary is None:
        # The warm-up phase's line comes first; alone, the timed phase never finished.
        raise _fail("benchmark_model's output ends after the warm-up phase: the timed runs did "
                    "not finish", text)
    # The last line is the timed phase (a lone line beside a summary is an excerpt of it).
    timed = stats[-1]
    count = int(timed.get("count", 0))
    if count < 1:
        raise _fail("benchmark_model's timed phase ran no inference (count=0)", text)
    avg, std, lo, hi = _phase(timed)
    summary = summary or {}
    # The summary's figure is the tool's own mean of the timed phase, named by release.
    for label in ("inference (avg)", "inference", "no stats"):
        if _finite(summary.get(label)) is not None:
            avg = summary[label]
            break
    if _finite(avg) is None:
        raise _fail("benchmark_model's timed phase has no mean time (no avg= and no summary)", text)
    warmup = _finite(summary.get("warmup (avg)", summary.get("warmup")))
    if warmup is None and len(stats) >= 2:
        warmup = _finite(_phase(stats[0])[0])
    warm_line = stats[0] if len(stats) >= 2 else {}
    return BenchmarkOutput(count=count, avg_us=avg, std_us=_finite(std), min_us=_finite(lo),
                           max_us=_finite(hi), init_us=_finite(summary.get("init")),
                           warmup_avg_us=warmup,
                           warmup_count=int(warm_line["count"]) if "count" in warm_line else None)

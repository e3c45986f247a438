"""The one measurement loop, for blocks and whole networks alike.

Against devices whose speed drifts by tens of percent over minutes:
- every attempt starts with a warm-up until times settle and a calibration: calls are grouped into
  samples of at least `min_sample_ms`, so the timer's own cost is negligible;
- samples are taken in rounds, each visiting every model in a fresh random order, so slow drift
  lands on all models alike instead of on whichever ran during a slow spell;
- after every round the caller checkpoints: an interruption loses at most one round;
- an entry whose spread (profiler/tables/measurement.py) exceeds `max_spread` is measured again
  from scratch, up to `retries`;
- with `drift_every`, a sentinel model is timed every that many samples; when it drifts past
  `drift_threshold` the device cools down and the samples taken since its last check are taken
  again (the drift is recorded with the samples);
- a lost connection is retried on a fresh one (DeviceSession.call);
- with a reference model, every sample is taken right after one of the reference, so that each
  round says how fast the device ran then, and runs at different speeds can be put on one
  (profiler/tables/speed.py).
Several units of one device model (a phone farm) split the models among them, each unit running
this loop in a thread of its own.
"""

from __future__ import annotations

import random
import statistics
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from profiler.errors import DeviceError, UserError
from profiler.tables.samples import Samples
from .session import DeviceSession


@dataclass(frozen=True)
class Model:
    path: Path  # the model file on this machine; sessions push it where they need
    nchw: tuple


REFERENCE = "@reference"  # the reference's name on the device: no block key starts with @


class Stopped(Exception):
    """Another unit failed or the user interrupted: stop at the next sample."""


class DriftWatch:
    def __init__(self, session: DeviceSession, samples: Samples, name: str, model: Model):
        self.session, self.samples, self.name, self.model = session, samples, name, model
        self.profile = session.profile
        self.baseline: float | None = None
        self.since: list[tuple[str, int]] = []     # (key, its round) sampled since the last check
        self.redone: set[tuple[str, int]] = set()

    def _ratio(self) -> float:
        def time_sentinel(s):
            warm = s.ready(self.name, self.model.path, self.model.nchw)
            return s.bench.sample(self.name, warm.inner, self.profile.runs_per_round)
        latency = statistics.median(self.session.call(time_sentinel))
        if self.baseline is None:
            self.baseline = latency
        self.latest = latency
        return latency / self.baseline

    def after(self, key: str) -> list[str]:
        """Note a sample of `key`; the keys whose last sample must be taken again. A sample is
        taken again at most once, so a device that never settles still finishes."""
        p = self.profile
        if self.baseline is None:
            self._ratio()
        self.since.append((key, len(self.samples.attempts(key)[-1]["rounds"])))
        if len(self.since) < p.drift_every:
            return []
        since, self.since = self.since, []
        ratio = self._ratio()
        if abs(ratio - 1) <= p.drift_threshold:
            return []
        redo = [s for s in since if s not in self.redone]
        self.redone.update(redo)
        event = {"unit": self.session.unit, "ratio": round(ratio, 4), "cooldowns": 0,
                 "rebased": False, "redone": [k for k, _ in redo]}
        while abs(ratio - 1) > p.drift_threshold and event["cooldowns"] < p.cooldowns:
            tqdm.write(f"pxprof: {self.session.unit} drifted {ratio - 1:+.1%} from its sentinel "
                       f"block; cooling down {p.cooldown_s:g} s", file=sys.stderr)
            time.sleep(p.cooldown_s)
            event["cooldowns"] += 1
            ratio = self._ratio()
        if abs(ratio - 1) > p.drift_threshold:
            self.baseline = self.latest  # it settled at another speed: compare with that from now
            event["rebased"] = True
        for k, _ in redo:
            self.samples.drop_round(k)
        self.samples.add_drift(event)
        return event["redone"]


def _load_reference(session: DeviceSession, reference: Model) -> None:
    """Load and warm up the reference, or say in one line why it cannot be: before any
    measuring, since every round needs it."""
    try:
        session.call(lambda s: s.ready(REFERENCE, reference.path, reference.nchw))
    except DeviceError as exc:
        raise UserError(f"the reference model {session.profile.reference} does not run on "
                        f"{session.profile.name}: {exc}") from None


def _measure_unit(session: DeviceSession, samples: Samples, models: dict[str, Model],
                  keys: list[str], checkpoint, bar, stop: threading.Event,
                  reference: Model | None) -> None:
    profile = session.profile
    rng = random.Random(0)
    watch = DriftWatch(session, samples, keys[0], models[keys[0]]) if profile.drift_every else None
    if reference:
        _load_reference(session, reference)

    def take(key: str) -> tuple[list[float], list[float] | None, int | None]:
        if stop.is_set():
            raise Stopped
        m, inner = models[key], samples.open_attempt(key)["inner"]

        def sample(s):
            warm = s.ready(key, m.path, m.nchw)
            if not reference:
                return s.bench.sample(key, inner, profile.runs_per_round), None, None
            ref = s.ready(REFERENCE, reference.path, reference.nchw)
            # The reference's sample lasts as long as the model's: on a loaded device a 30-ms
            # network shares the CPU in every sample, while a 2-ms reference sample finds the
            # moments when it is free, and would not see the load the network ran under.
            ref_inner = max(ref.inner, round(inner * warm.call_ms / ref.call_ms)) \
                if ref.call_ms else ref.inner
            return *s.bench.paired(key, inner, profile.runs_per_round, REFERENCE, ref_inner), \
                ref_inner
        return session.call(sample)

    todo = [k for k in keys if samples.needs_work(k)]
    # Everything this unit will load, pushed at once (a transport may batch what it sends).
    session.call(lambda s: s.transport.push_many([models[k].path for k in todo]))
    while todo:
        for key in tqdm(todo, desc="warm-up", unit="model", leave=False, disable=bar.disable):
            if samples.open_attempt(key) is None:  # a new attempt: warm up and calibrate afresh
                m = models[key]
                warm = session.call(lambda s: s.ready(key, m.path, m.nchw, force_warmup=True))
                samples.new_attempt(key, warm.runs, warm.inner, session.unit)
            bar.total += samples.rounds - len(samples.open_attempt(key)["rounds"])
        bar.refresh()
        while True:
            order = [k for k in todo if samples.open_attempt(k) is not None]
            if not order:
                break
            rng.shuffle(order)
            queue = deque(order)
            while queue:
                key = queue.popleft()
                samples.add_round(key, *take(key))
                bar.update()
                redo = watch.after(key) if watch else []
                queue.extend(k for k in redo if k not in queue)
                bar.total += len(redo)
            checkpoint()
        if watch:
            watch.since.clear()  # those attempts are complete; retries start afresh
        todo = [k for k in todo if samples.needs_work(k)]


def measure_all(sessions: list[DeviceSession], samples: Samples, models: dict[str, Model],
                checkpoint=lambda: None, desc: str = "measure", progress: bool = True,
                reference: Model | None = None) -> None:
    """Measure every model that needs work into `samples`, split among `sessions`, with the
    `reference` model timed in every round when given."""
    keys = [k for k in models if samples.needs_work(k)]
    if not keys:
        return
    shares: dict[int, list[str]] = {i: [] for i in range(len(sessions))}
    units = {s.unit: i for i, s in enumerate(sessions)}
    for n, key in enumerate(keys):
        # An attempt in progress stays on the unit that began it; the rest are dealt in turn.
        attempt = samples.open_attempt(key)
        unit = units.get(attempt.get("unit")) if attempt else None
        shares[unit if unit is not None else n % len(sessions)].append(key)

    def locked_checkpoint():
        with samples.lock:
            checkpoint()

    stop = threading.Event()
    bar = tqdm(total=0, desc=desc, unit="round", disable=not progress)
    try:
        if len(sessions) == 1:
            _measure_unit(sessions[0], samples, models, keys, locked_checkpoint, bar, stop,
                          reference)
            return
        errors: list[BaseException] = []

        def work(i):
            try:
                if shares[i]:
                    _measure_unit(sessions[i], samples, models, shares[i], locked_checkpoint, bar,
                                  stop, reference)
            except Stopped:
                pass
            except BaseException as exc:  # handed to the main thread, which reports it
                errors.append(exc)
                stop.set()

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in shares]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        finally:
            stop.set()  # on Ctrl-C too: every unit stops at its next sample
            for t in threads:
                t.join()
        if errors:
            raise errors[0]
    finally:
        bar.close()

"""Fitting a Calibration (profiler/tables/latency.py) to whole networks measured end to end.

Four forms, each fitted for relative error with non-negative parameters, simplest first:

    sum              network = sum of blocks
    per-call         network = sum - (n - 1) * c
    scale            network = s * sum
    per-call+scale   network = s * (sum - (n - 1) * c)

(n: the network's blocks that are not `zero`; c: the runtime's per-call cost, paid once per block
measured alone and once per network; the sums are the predictor's, of the networks' blocks.)
`per-call` comes before `scale`: every block timed alone pays a call that the network pays once,
while a scale says that networks run at another speed than their blocks, which a device has to
show. The form kept is the simplest whose leave-one-out error is within one standard error of
the least (the one-standard-error rule): a parameter that does not earn its keep by more than
the noise of ten networks only fits noise.

A network that other work slowed for the whole of its measurement is not what the device does,
and least squares follow it: on this CPU, two consecutive networks of ten measured 20 % slow, and
the calibration chose `per-call+scale` with a scale of 1.6 and missed fresh networks by 7.9 %
(3.3 % with them left out). So networks further from a form's fit than OUTLIER robust standard
deviations (of the relative errors, at least MIN_SPREAD) are left out of every form, unless they
are more than a third of the networks: then which ones are disturbed cannot be told. A network
unlike the others may be left out too (on `tiny`, two of ten networks ran 4-5 % slower for
their block sums than the rest in each of five runs); no form could have priced it either.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.linear_model import LinearRegression

from profiler.errors import UserError
from profiler.tables.latency import Calibration, runs

FORMS = ("sum", "per-call", "scale", "per-call+scale")  # simplest first
TIE = 0.001  # the least margin a form must beat a simpler one by, as a relative error
OUTLIER = 3.0
MIN_SPREAD = 0.01  # the test-retest error of a quiet device: no fit is judged finer


def _fit(form: str, sums: np.ndarray, blocks: np.ndarray, measured: np.ndarray) -> Calibration:
    if form == "sum":
        return Calibration()
    weight = 1.0 / measured ** 2  # relative least squares
    if form == "scale":
        return Calibration(scale=float((weight * sums * measured).sum() / (weight * sums ** 2).sum()))
    calls = blocks - 1.0
    if form == "per-call":
        # measured - sums = -calls * c, c >= 0
        c = -(weight * calls * (measured - sums)).sum() / max((weight * calls ** 2).sum(), 1e-300)
        return Calibration(per_call_ms=float(max(c, 0.0)))
    # measured = s * sums - (s c) * calls: two non-negative weights, s > 0.
    X = np.column_stack([sums, -calls])
    fit = LinearRegression(positive=True, fit_intercept=False).fit(X, measured, sample_weight=weight)
    scale, sc = fit.coef_
    if scale <= 0:
        return _fit("scale", sums, blocks, measured)
    return Calibration(scale=float(scale), per_call_ms=float(sc / scale))


def predict(cal: Calibration, sums: np.ndarray, blocks: np.ndarray) -> np.ndarray:
    return cal.scale * (sums - (blocks - 1.0) * cal.per_call_ms)


def disturbed(sums: np.ndarray, blocks: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Which networks some form's fit finds OUTLIER robust standard deviations away from it."""
    out = np.zeros(len(measured), dtype=bool)
    for form in FORMS[1:]:
        error = predict(_fit(form, sums, blocks, measured), sums, blocks) / measured - 1
        deviation = np.abs(error - np.median(error))
        out |= deviation > OUTLIER * max(1.4826 * np.median(deviation), MIN_SPREAD)
    return out if out.sum() <= len(measured) // 3 else np.zeros(len(measured), dtype=bool)


def fit_calibration(sums, blocks, measured) -> tuple[str, Calibration, dict[str, float], list[int]]:
    """The chosen form, its calibration fitted on the networks not left out, each form's
    leave-one-out mean relative error over those, and the networks left out (indices)."""
    sums, blocks, measured = (np.asarray(a, dtype=float) for a in (sums, blocks, measured))
    if len(measured) < 3:
        raise ValueError("a calibration needs at least 3 measured networks")
    keep = ~disturbed(sums, blocks, measured)
    errors = {}
    for form in FORMS:
        errors[form] = []
        for i in np.flatnonzero(keep):
            rest = keep & (np.arange(len(measured)) != i)
            cal = _fit(form, sums[rest], blocks[rest], measured[rest])
            errors[form].append(abs(predict(cal, sums[i:i + 1], blocks[i:i + 1])[0] / measured[i] - 1))
    errors = {form: np.array(e) for form, e in errors.items()}
    best = min(FORMS, key=lambda f: errors[f].mean())

    def margin(form):  # one standard error of the paired difference from the best, or TIE
        diff = errors[form] - errors[best]
        return max(diff.std(ddof=1) / np.sqrt(len(diff)), TIE)

    form = next(f for f in FORMS if errors[f].mean() <= errors[best].mean() + margin(f))
    return form, _fit(form, sums[keep], blocks[keep], measured[keep]), \
        {f: float(e.mean()) for f, e in errors.items()}, [int(i) for i in np.flatnonzero(~keep)]


def calibrate(predictor, profile, space, networks: int, seed: int):
    """The predictor with a calibration fitted to `networks` random architectures of `space`
    measured end to end on `profile`'s device."""
    from profiler.devices.check import measure_networks, random_architectures

    recorded = predictor.fingerprint or {}
    for field in ("runtime", "threads", "batch"):
        mine, theirs = str(getattr(profile, field)), str(recorded.get(field) or "")
        if theirs and theirs != mine:
            raise UserError(f"the table was measured with {field} {theirs}; calibrating on device "
                            f"{profile.name} ({field} {mine}) would mix two devices")
    archs = random_architectures(space, networks, seed)
    # Each network is measured alone, as validation and deployment run it, at the device speed
    # the predictor's table was measured at (the reference block's): a calibration fitted to
    # networks measured beside their blocks learned a context that no deployed network runs in.
    measured = measure_networks(profile, space, archs, seed, at=predictor.reference)[0]
    nets = [space.network(a) for a in archs]
    # The predictor's own block sums: the calibration corrects what it will be applied to.
    sums = [float(predictor.block_latencies(net).sum()) for net in nets]
    form, calibration, cv, left_out = fit_calibration(sums, [int(runs(net).sum()) for net in nets],
                                                      measured)
    info = {"form": form, "cv_mape": cv, "left_out": left_out, "device": profile.name,
            "space": space.name,
            "seed": seed, "networks": [
                {"choices": a, "measured_ms": float(m), "predicted_block_sum_ms": b}
                for a, m, b in zip(archs, measured, sums)]}
    return replace(predictor, calibration=calibration, calibration_info=info)

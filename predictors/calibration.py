"""Fitting a Calibration (profiler/tables/latency.py) to whole networks measured end to end.

Four forms, each fitted for relative error with non-negative parameters:

    sum              network = sum of blocks
    scale            network = s * sum
    per-call         network = sum - (n - 1) * c
    per-call+scale   network = s * (sum - (n - 1) * c)

(n: the network's blocks that are not `zero`; c: the runtime's per-call cost, paid once per block
measured alone and once per network; the sums are the predictor's, of the networks' blocks.) The form kept is the one with the least leave-one-out error
on the measured networks; a simpler form wins ties within a tenth of a percent point, since a
parameter that does not earn its keep only fits noise.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from sklearn.linear_model import LinearRegression

from profiler.errors import UserError
from profiler.tables.latency import Calibration, runs

FORMS = ("sum", "scale", "per-call", "per-call+scale")
TIE = 0.001


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


def fit_calibration(sums, blocks, measured) -> tuple[str, Calibration, dict[str, float]]:
    """The chosen form, its calibration fitted on every network, and each form's leave-one-out
    mean relative error."""
    sums, blocks, measured = (np.asarray(a, dtype=float) for a in (sums, blocks, measured))
    if len(measured) < 3:
        raise ValueError("a calibration needs at least 3 measured networks")
    cv = {}
    for form in FORMS:
        errors = []
        for i in range(len(measured)):
            keep = np.arange(len(measured)) != i
            cal = _fit(form, sums[keep], blocks[keep], measured[keep])
            errors.append(abs(predict(cal, sums[i:i + 1], blocks[i:i + 1])[0] / measured[i] - 1))
        cv[form] = float(np.mean(errors))
    best = min(cv.values())
    form = next(f for f in FORMS if cv[f] <= best + TIE)
    return form, _fit(form, sums, blocks, measured), cv


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
    form, calibration, cv = fit_calibration(sums, [int(runs(net).sum()) for net in nets],
                                            measured)
    info = {"form": form, "cv_mape": cv, "device": profile.name, "space": space.name,
            "seed": seed, "networks": [
                {"choices": a, "measured_ms": float(m), "predicted_block_sum_ms": b}
                for a, m, b in zip(archs, measured, sums)]}
    return replace(predictor, calibration=calibration, calibration_info=info)

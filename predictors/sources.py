"""A latency source from the files a user names: a table, a predictor, or a table whose gaps the
predictor fills. Both must describe one device and one space."""

from __future__ import annotations

from pathlib import Path

from profiler.errors import UserError
from profiler.tables.fingerprint import mismatch
from profiler.tables.latency import Filled, LatencySource
from profiler.tables.table import LatencyTable

# Fingerprint fields a predictor's training table and another table must share.
SAME_DEVICE = ("device", "runtime", "threads", "batch")


def open_source(table_path: Path | None, predictor_path: Path | None) -> LatencySource:
    if table_path is None and predictor_path is None:
        raise UserError("give a latency source: --table T.csv, --predictor P.json, or both "
                        "(the predictor then fills the blocks the table lacks)")
    table = LatencyTable.load(table_path) if table_path is not None else None
    predictor = None
    if predictor_path is not None:
        from .model import Predictor  # scikit-learn: only with a predictor

        predictor = Predictor.load(predictor_path)
    if table is None or predictor is None:
        return table or predictor
    if table.space and predictor.space and table.space != predictor.space:
        raise UserError(f"{table_path} was measured for space {table.space!r}, the predictor "
                        f"{predictor_path} for {predictor.space!r}")
    recorded = {k: v for k, v in predictor.fingerprint.items() if v not in (None, "")}
    differ = mismatch({k: table.fingerprint.get(k) for k in recorded}, recorded,
                      [f for f in SAME_DEVICE if f in recorded])
    if differ:
        raise UserError(f"{table_path} and the predictor {predictor_path} come from different "
                        f"devices: {differ}")
    return Filled(table, predictor)

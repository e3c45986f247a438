"""LatencyTable: one row per block key, latency in milliseconds, with how it was measured.

CSV schema, version 4 (column `schema` = 4 in every row):

    key                       canonical block key (profiler/space/blockspec.py)
    kind, in_h, in_w, in_c,   the key parsed (redundant, for pandas users; checked on load)
    out_h, out_w, out_c, kernel, stride, expand, idskip, mid, se, hs
    latency_ms                the device profile's quantile of the samples (the median unless
                              it says otherwise): the value predictions and search use
    mean_ms, std_ms, iqr_ms, min_ms, spread (how far latency_ms can be trusted: IQR / median for
                              the median, the relative jackknife standard error over rounds for a
                              lower quantile; profiler/tables/measurement.py)
    samples, warmup, inner    sample count, untimed warm-up calls, calls per calibrated sample
    unstable                  spread stayed above the device's max_spread after every retry
    space                     the search space the row was measured for (import: the preset covered)
    device, transport, runtime, runtime_version, threads, batch, host, host_cpu, cpu_affinity,
    governor, temperature_c, measured_at, pxnas_version, reference, reference_ms,
    reference_elasticity, reference_weight
                              the fingerprint (profiler/tables/fingerprint.py); the first eight are
                              checked: tables whose checked fingerprints differ are never merged;
                              the last four name the device's reference block, its typical
                              latency over the run (the speed the rows are read at), and how the
                              run's models followed it: their elasticity and its weight, the
                              prior of networks measured later (profiler/tables/speed.py; empty
                              without a reference)

Imported lookup tables leave the columns they do not know empty. The raw samples of a measured
table are kept beside it in T.samples.json (profiler/devices/measure.py).

History: 1 (pxnas 0.1) first version; 2 adds mid, se, hs (MobileNetV3 blocks); 3 adds reference,
reference_ms; 4 adds reference_elasticity, reference_weight. Older tables are read as version 4
with mid 0, no se/hs and no reference or elasticity.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from profiler.errors import UserError
from profiler.files import atomic_path
from profiler.limits import MAX_BLOCK_MS, MIN_BLOCK_MS
from profiler.records import read_text
from profiler.space.blockspec import BlockSpec, parse_key
from .fingerprint import CHECKED, FIELDS, REFERENCE, Reference, mismatch, reference_of
from .latency import LatencySource
from .measurement import Measurement

SCHEMA = 4
SHAPE = ["kind", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "kernel", "stride", "expand",
         "idskip", "mid", "se", "hs"]
ADDED = {"1": {"mid": 0, "se": 0, "hs": 0}, "2": {"reference": None, "reference_ms": None},
         "3": {"reference_elasticity": None, "reference_weight": None}}
STATS = ["latency_ms", "mean_ms", "std_ms", "iqr_ms", "min_ms", "spread", "samples", "warmup",
         "inner", "unstable"]
FINGERPRINT = list(FIELDS)
COLUMNS = ["key"] + SHAPE + STATS + ["space"] + FINGERPRINT + ["schema"]


def samples_path(csv: Path) -> Path:
    return Path(csv).with_suffix(".samples.json")


def shape_row(spec: BlockSpec) -> dict:
    """The columns a row's key determines (what a key does not say, such as a conv's activation,
    is not a table's: profiler/space/kinds/conv.py)."""
    spec = parse_key(spec.key)
    return {"kind": spec.kind, "in_h": spec.in_h, "in_w": spec.in_w, "in_c": spec.in_c,
            "out_h": spec.out_h, "out_w": spec.out_w, "out_c": spec.out_c, "kernel": spec.kernel,
            "stride": spec.stride, "expand": spec.expand, "idskip": int(spec.idskip),
            "mid": spec.mid, "se": int(spec.se), "hs": int(spec.hs)}


def measurement_row(m: Measurement, max_spread: float) -> dict:
    return {"key": m.key, **shape_row(parse_key(m.key)), "latency_ms": m.latency,
            "mean_ms": m.mean, "std_ms": m.std, "iqr_ms": m.iqr, "min_ms": m.min, "spread": m.spread,
            "samples": len(m.times_ms), "warmup": m.warmup, "inner": m.inner,
            "unstable": m.spread > max_spread}


class LatencyTable(LatencySource):
    def __init__(self, rows: pd.DataFrame, source: str = "table"):
        self.source = source
        self.df = self._validate(rows.reset_index(drop=True))
        self._latency = dict(zip(self.df["key"], self.df["latency_ms"].astype(float)))

    @classmethod
    def from_rows(cls, rows: list[dict], space: str, fingerprint: dict) -> "LatencyTable":
        full = [{c: row.get(c, fingerprint.get(c)) for c in COLUMNS} | {"space": space, "schema": SCHEMA}
                for row in rows]
        return cls(pd.DataFrame(full, columns=COLUMNS))

    def _validate(self, df: pd.DataFrame) -> pd.DataFrame:
        src = self.source
        for old in ADDED:  # each older schema gains what later ones added
            if "schema" in df.columns and len(df) and set(df["schema"].astype(str)) == {old}:
                df = df.assign(**ADDED[old], schema=int(old) + 1)
        missing = [c for c in COLUMNS if c not in df.columns]
        if missing:
            raise UserError(f"{src}: not a pxnas latency table; missing column(s): {', '.join(missing)}")
        if len(df) and set(df["schema"]) != {SCHEMA}:
            raise UserError(f"{src}: unsupported table schema {sorted(set(df['schema']))}; "
                            f"this pxnas reads schema {SCHEMA}")
        dup = df["key"][df["key"].duplicated()]
        if len(dup):
            raise UserError(f"{src}: duplicate key {dup.iloc[0]}")
        lat = pd.to_numeric(df["latency_ms"], errors="coerce")
        bad = df["key"][~lat.between(MIN_BLOCK_MS, MAX_BLOCK_MS)]  # NaN is not between
        if len(bad):
            value = df["latency_ms"][bad.index[0]]
            raise UserError(f"{src}: latency_ms must be a positive number of milliseconds that a "
                            f"block takes, {MIN_BLOCK_MS:g} to {MAX_BLOCK_MS:g}; row "
                            f"{bad.index[0] + 2} ({bad.iloc[0]}) has "
                            f"{repr(value) if isinstance(value, str) else f'{value:g}'}")
        for i, key in df["key"].items():
            spec = parse_key(str(key))
            if any(str(df.at[i, c]) != str(v) for c, v in shape_row(spec).items()):
                raise UserError(f"{src}: row {i + 2}: shape columns disagree with key {key}")
        for col in CHECKED:
            if df[col].astype(str).nunique() > 1:
                raise UserError(f"{src}: rows measured with different {col} in one table")
        df = df[COLUMNS].copy()
        df["latency_ms"] = lat
        return df

    @classmethod
    def load(cls, path: Path) -> "LatencyTable":
        text = read_text(path, "latency table")  # bounded: pandas would read /dev/zero forever
        try:
            df = pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])
        except ValueError as exc:  # pandas' ParserError and EmptyDataError
            raise UserError(f"{path}: not a readable CSV table ({str(exc).splitlines()[0]})") from None
        return cls(df, str(path))

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            self.df.to_csv(tmp, index=False, float_format="%.6g")

    def __len__(self) -> int:
        return len(self.df)

    @property
    def keys(self) -> list[str]:
        return list(self.df["key"])

    @property
    def fingerprint(self) -> dict:
        return {c: self.df[c].iloc[0] for c in FINGERPRINT} if len(self.df) else {}

    @property
    def reference(self) -> Reference | None:
        """The device speed of every row (profiler/tables/fingerprint.py), if they share one."""
        shared = self.df[list(REFERENCE)].astype(str).drop_duplicates()
        return reference_of(self.fingerprint) if len(shared) == 1 else None

    @property
    def space(self) -> str:
        # Blocks sampled around a space (pxprof measure --sample) record "SPACE~sample…".
        names = {name.split("~")[0] for name in self.df["space"].dropna().astype(str)} - {""}
        return names.pop() if len(names) == 1 else ""

    def latency(self, spec: BlockSpec) -> float:
        return float(self.block_latencies([spec])[0])

    def missing(self, specs) -> list[str]:
        return [s.key for s in specs if s.key not in self._latency]

    def _latencies(self, specs):
        return [self._latency[s.key] for s in specs]

    def merge(self, other: "LatencyTable") -> "LatencyTable":
        """Rows of both tables (rows of `other` win); refused unless measured the same way."""
        mine, theirs = self.fingerprint, other.fingerprint
        differ = mine and theirs and mismatch(mine, theirs)
        if differ:
            raise UserError(f"refusing to merge {self.source} and {other.source}: they were measured "
                            f"with different {differ}")
        keep = self.df[~self.df["key"].isin(other.df["key"])]
        return LatencyTable(pd.concat([keep, other.df], ignore_index=True), self.source)

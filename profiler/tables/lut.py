"""Import the ProxylessNAS / Once-for-All YAML lookup tables in ms: {key: {count, mean, var}}
(ProxylessNAS) or {key: {count, mean, std}} (Once-for-All, one file per resolution)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from profiler import __version__
from profiler.errors import UserError
from profiler.limits import MAX_BLOCK_MS, MIN_BLOCK_MS
from profiler.records import check_fields, load_record, read_mapping, spec
from profiler.space.blockspec import parse_key
from profiler.space.spaces import get_space, list_spaces
from .table import LatencyTable, shape_row


def coverage(keys) -> dict[str, tuple[int, int]]:
    """For each preset space, at its own resolution and at every resolution a stem in `keys` has
    (Once-for-All publishes one table per resolution): (how many of its blocks are in `keys`, how
    many it has), by the space's name (NAME@R at another resolution)."""
    keys = set(keys)
    out = {}
    for name in list_spaces():
        for resolution in {None} | stems(keys):
            try:
                space = get_space(name, resolution)
            except UserError:  # a resolution this space cannot take
                continue
            blocks = [b.key for b in space.blocks()]
            out[space.name] = (sum(k in keys for k in blocks), len(blocks))
    return out


def stems(keys) -> set[int]:
    """The input resolutions of the stems (3x3 convolutions of a square image) among `keys`."""
    return {spec.in_h for spec in map(_parsed, keys) if spec is not None and spec.kind == "conv"
            and spec.kernel == 3 and spec.in_h == spec.in_w}


def _parsed(key):
    try:
        return parse_key(str(key))
    except UserError:
        return None


@dataclass(frozen=True)
class LutEntry:
    """One block of a published lookup table, in ms (ProxylessNAS: count/mean/var; Once-for-All:
    count/mean/std)."""
    mean: float = spec(ge=MIN_BLOCK_MS, le=MAX_BLOCK_MS)
    var: float | None = spec(None, ge=0)
    std: float | None = spec(None, ge=0)
    count: float | None = spec(None, ge=0)

    def __post_init__(self):
        check_fields(self)

    @property
    def std_ms(self) -> float:
        return self.std if self.std is not None else \
            math.sqrt(self.var) if self.var is not None else math.nan


def import_lut(path: Path, device: str) -> LatencyTable:
    data = read_mapping(path, "lookup table")
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: not a lookup table (expected a mapping of block key to "
                        f"{{count, mean, var}})")
    rows, unparsed, reasons = [], [], []
    for key, entry in data.items():
        try:
            spec_ = parse_key(str(key))
        except UserError as exc:
            unparsed.append(str(key))
            reasons.append(str(exc))
            continue
        lut = load_record(LutEntry, entry, f"{path}: entry {key}", extra="ignore")
        rows.append({"key": spec_.key, **shape_row(spec_), "latency_ms": lut.mean,
                     "mean_ms": lut.mean, "std_ms": lut.std_ms,
                     "samples": math.nan if lut.count is None else lut.count, "unstable": False})
    if unparsed:
        shown = ", ".join(unparsed[:5]) + (f" and {len(unparsed) - 5} more" if len(unparsed) > 5
                                           else "")
        raise UserError(f"{path}: {len(unparsed)} unparseable block key(s): {shown} (the first: "
                        f"{reasons[0]})")
    # A table records one space, at one resolution: networks at two resolutions share no block
    # but the head's, and a table mixing them would be searched as if it covered one.
    resolutions = sorted(stems(data))
    if len(resolutions) > 1:
        raise UserError(f"{path}: blocks of networks at {len(resolutions)} input resolutions "
                        f"(stems at {', '.join(map(str, resolutions))} px); import one lookup "
                        f"table per resolution, as Once-for-All publishes them")
    # The largest fully covered preset names the table's space.
    covered = {name: need for name, (have, need) in coverage(data).items() if have == need}
    space = max(covered, key=covered.get) if covered else ""
    fingerprint = {"device": device, "transport": "unknown", "runtime": "lookup-table",
                   "pxnas_version": __version__}
    return LatencyTable.from_rows(rows, space, fingerprint)

"""Import the ProxylessNAS / Once-for-All YAML lookup tables: {key: {count, mean, var}} in ms."""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from . import __version__
from .blockspec import parse_key
from .errors import UserError
from .space import get_space, list_spaces
from .table import LatencyTable, shape_row


def coverage(keys) -> dict[str, tuple[int, int]]:
    """For each preset space: (how many of its blocks are in `keys`, how many it has)."""
    keys = set(keys)
    out = {}
    for name in list_spaces():
        blocks = [b.key for b in get_space(name).blocks()]
        out[name] = (sum(k in keys for k in blocks), len(blocks))
    return out


def _number(value, what: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserError(f"lookup table entry {key}: {what} must be a number, got {value!r}")
    return float(value)


def import_lut(path: Path, device: str) -> LatencyTable:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not data:
        raise UserError(f"{path}: not a lookup table (expected a mapping of block key to "
                        f"{{count, mean, var}})")
    rows = []
    for key, entry in data.items():
        if not isinstance(entry, dict) or "mean" not in entry:
            raise UserError(f"{path}: not a lookup table: entry {key!r} has no mean")
        try:
            spec = parse_key(str(key))
        except UserError as exc:
            raise UserError(f"{path}: {exc}") from None
        mean = _number(entry["mean"], "mean", key)
        if mean <= 0:
            raise UserError(f"{path}: entry {key}: latency must be positive, got {mean}")
        var = _number(entry.get("var", math.nan), "var", key) if "var" in entry else math.nan
        count = _number(entry["count"], "count", key) if "count" in entry else math.nan
        rows.append({"key": spec.key, **shape_row(spec), "latency_ms": mean, "mean_ms": mean,
                     "std_ms": math.sqrt(var) if var >= 0 else math.nan, "samples": count,
                     "unstable": False})
    # The largest fully covered preset names the table's space.
    covered = {name: need for name, (have, need) in coverage(data).items() if have == need}
    space = max(covered, key=covered.get) if covered else ""
    fingerprint = {"device": device, "transport": "unknown", "runtime": "lookup-table",
                   "pxnas_version": __version__}
    return LatencyTable.from_rows(rows, space, fingerprint)

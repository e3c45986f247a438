"""Typed records: the one way every file the tools read becomes a Python object.

A record is a dataclass whose fields carry their own checks (`spec`: a range, choices). Building
one checks every field against its type hint, exactly: a boolean is not an integer, a list is not
text, a number is finite and within its range. `load_record` builds a record from a mapping read
from a file and names the file and the field in every message; `read_mapping` reads a YAML or JSON
file, refusing binary or non-UTF-8 content as "not a ... file" rather than failing on it later, and
refusing what no pxnas file is: larger than its bound, nested deeper than MAX_NESTING, or giving a
key twice (profiler/limits.py).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from pathlib import Path

import yaml

from .errors import UserError
from .limits import MAX_FILE_BYTES, MAX_NESTING, MIB


def spec(default=dataclasses.MISSING, *, ge=None, gt=None, le=None, choices=None,
         text_numbers: bool = False, default_factory=dataclasses.MISSING):
    """A dataclass field with checks: ge/gt/le bounds, choices, and (text_numbers) a number where
    text is expected taken as its text (YAML reads `cpus: 2` as a number)."""
    meta = {"ge": ge, "gt": gt, "le": le, "choices": choices, "text_numbers": text_numbers}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) < 40 else f"a number of {len(text)} digits"
    if isinstance(value, str):
        return repr(value) if len(value) < 40 else "text"
    return {list: "a list", tuple: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def _check(value, hint, meta: dict, name: str):
    """`value` as the field `name` of type `hint` holds it, or a UserError naming the field."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        return _check(value, hint, meta, name)
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{name}: expected true or false, got {_kind(value)}")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or (hint is int and not isinstance(value, int)):
            raise UserError(f"{name}: expected {'an integer' if hint is int else 'a number'}, "
                            f"got {_kind(value)}")
        try:  # an integer too large for a float (10**400) is no finite number either
            finite = math.isfinite(value)
        except OverflowError:
            finite = False
        if not finite:
            raise UserError(f"{name}: expected a finite number, got {_kind(value)}")
        for bound, ok, words in (("ge", lambda v, b: v >= b, "at least"),
                                 ("gt", lambda v, b: v > b, "more than"),
                                 ("le", lambda v, b: v <= b, "at most")):
            if meta.get(bound) is not None and not ok(value, meta[bound]):
                raise UserError(f"{name}: must be {words} {meta[bound]}, got {_kind(value)}")
        value = hint(value)
    elif hint is str:
        if meta.get("text_numbers") and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise UserError(f"{name}: expected text, got {_kind(value)}")
    elif origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{name}: expected a list, got {_kind(value)}")
        value = origin(_check(v, args[0], meta, f"{name}[{i}]") for i, v in enumerate(value))
    elif origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise UserError(f"{name}: expected a mapping, got {_kind(value)}")
        if args:
            value = {_check(k, args[0], {}, f"{name} key"): _check(v, args[1], {}, f"{name}.{k}")
                     for k, v in value.items()}
    elif dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            value = load_record(hint, value, name)
    elif hint is not typing.Any and not isinstance(value, hint):
        raise UserError(f"{name}: expected {hint.__name__}, got {_kind(value)}")
    if meta.get("choices") is not None and value not in meta["choices"]:
        raise UserError(f"{name}: unknown {name.split('.')[-1]} {_kind(value)}; known: "
                        f"{', '.join(map(str, meta['choices']))}")
    return value


def check_fields(record) -> None:
    """Check (and normalise: lists of a tuple field become tuples) every field of a dataclass
    record; called from its __post_init__, so a record built in code is held to the files' rules."""
    hints = _hints(type(record))
    for f in dataclasses.fields(record):
        if not f.init:  # derived state, not read from a file
            continue
        value = _check(getattr(record, f.name), hints[f.name], f.metadata, f.name)
        object.__setattr__(record, f.name, value)


def load_record(cls, data, where: str, extra: str = "forbid", **given):
    """A `cls` record from the mapping `data` read from `where`; `given` fields come from
    elsewhere (a profile's name from its file name). extra="ignore" accepts fields `cls` lacks."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping of fields, got {_kind(data)}")
    names = {f.name for f in dataclasses.fields(cls) if f.init} - set(given)
    unknown = sorted(map(str, set(data) - names))
    if unknown and extra == "forbid":
        raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(names))}")
    required = {f.name for f in dataclasses.fields(cls) if f.init
                and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing = sorted(required - set(data) - set(given))
    if missing:
        raise UserError(f"{where}: missing field(s) {', '.join(missing)}")
    try:
        return cls(**{k: v for k, v in data.items() if k in names}, **given)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def read_text(path: Path, what: str) -> str:
    """The text of a file, or one line saying why not. At most the bound of `what`
    (profiler/limits.py) is read: /dev/zero or a runaway file is refused, not read until memory
    runs out."""
    path, a, limit = Path(path), _article(what), MAX_FILE_BYTES[what]
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise UserError(f"no such {what}: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not {a} {what}") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(raw) > limit:
        raise UserError(f"{path}: not {a} {what} (larger than {limit // MIB} MiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path}: not {a} {what} (not UTF-8 text)") from None
    if "\0" in text:
        raise UserError(f"{path}: not {a} {what} (binary content)")
    return text


class _DuplicateKey(ValueError):
    pass


def _unique(pairs) -> dict:
    """A JSON object from its (key, value) pairs, refusing a key given twice: the reader would
    otherwise keep the last one silently."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"key {key!r} is given twice")
        out[key] = value
    return out


class _Loader(yaml.SafeLoader):
    """safe_load, refusing a mapping that gives a key twice (it would keep the last one)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            lines = {}
            for k, _ in node.value:
                if k.tag == "tag:yaml.org,2002:merge":  # a merge (<<: *base) may be overridden
                    continue
                key, line = self.construct_object(k, deep=True), k.start_mark.line + 1
                try:
                    first = lines.get(key)
                except TypeError:  # an unhashable key: the constructor refuses it below
                    continue
                if first is not None:
                    raise _DuplicateKey(f"key {key!r} is given twice, on " + (
                        f"line {line}" if first == line else f"lines {first} and {line}"))
                lines[key] = line
        return super().construct_mapping(node, deep)


def _check_shape(data, text: str, path: Path, what: str) -> None:
    """Refuse data nested deeper than MAX_NESTING, or holding more values than its text could
    write out: YAML aliases repeat a value without writing it again (a few lines can stand for
    billions of values, or a list that holds itself), and the code after the reader walks them all.
    Written out, every value takes at least a character."""
    stack, seen = [(data, 1)], 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if depth > MAX_NESTING:
            raise UserError(f"{path}: not {_article(what)} {what} (nested deeper than "
                            f"{MAX_NESTING} levels)")
        if seen > len(text) + 1:
            raise UserError(f"{path}: not {_article(what)} {what} (its YAML aliases repeat "
                            f"more values than the file holds)")
        if isinstance(value, dict):
            stack += [(v, depth + 1) for v in value.values()]
        elif isinstance(value, list):
            stack += [(v, depth + 1) for v in value]


def read_mapping(path: Path, what: str, json_only: bool = False):
    """The data of a JSON (.json, or any file with json_only) or YAML (any other suffix) file."""
    path = Path(path)
    text = read_text(path, what)
    kind = "JSON" if json_only or path.suffix.lower() == ".json" else "YAML"
    try:
        data = json.loads(text, object_pairs_hook=_unique) if kind == "JSON" \
            else yaml.load(text, Loader=_Loader)
    except _DuplicateKey as exc:
        raise UserError(f"{path}: not {_article(what)} {what} ({exc})") from None
    except RecursionError:  # the readers recurse once a level: a few hundred levels is their end
        raise UserError(f"{path}: not {_article(what)} {what} (nested deeper than "
                        f"{MAX_NESTING} levels)") from None
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: not {_article(what)} {what} (not valid {kind}: "
                        f"{str(exc).splitlines()[0]})") from None
    _check_shape(data, text, path, what)
    return data

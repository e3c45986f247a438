"""Search spaces: the backbone, the candidate ops of every searchable layer, presets by name.

A space is pure data. `layers()` gives each searchable layer's candidates as BlockSpecs, `blocks()` the
unique blocks a device must profile, `network(choices)` the BlockSpecs of one architecture.
Candidate op names are `k{kernel}_e{expand}` and `zero` (the layer is skipped: its output is its input).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


from profiler.errors import UserError
from profiler.records import check_fields, load_record, read_mapping, spec
from .blockspec import BlockSpec, out_size
from .kinds.base import make_divisible

ZERO = "zero"


def op_name(kernel: int, expand: int) -> str:
    return f"k{kernel}_e{expand}"


@dataclass(frozen=True)
class Stage:
    width: int = spec(ge=1, le=100_000)
    repeats: int = spec(ge=1, le=100)
    stride: int = spec(ge=1, le=8)
    # MobileNetV3 spaces: squeeze-and-excitation and h-swish in this stage's blocks, and the
    # fewest layers it keeps (elastic depth: `zero` only in the layers after them).
    se: bool = False
    hs: bool = False
    min_depth: int = spec(0, ge=0, le=100)

    def __post_init__(self):
        check_fields(self)


@dataclass(frozen=True)
class Layer:
    """One searchable layer: its candidates by op name, in the space's op order."""
    index: int
    candidates: dict[str, BlockSpec]

    @property
    def ops(self) -> list[str]:
        return list(self.candidates)


@dataclass(frozen=True)
class SearchSpace:
    name: str
    resolution: int = spec(ge=1, le=4096)
    stem_width: int = spec(ge=1, le=100_000)
    first_width: int = spec(ge=1, le=100_000)
    stages: tuple[Stage, ...] = spec()
    feature_width: int = spec(ge=1, le=100_000)
    classes: int = spec(ge=1, le=1_000_000)
    stem_stride: int = spec(2, ge=1, le=8)
    in_channels: int = spec(3, ge=1, le=100_000)
    kernels: tuple[int, ...] = spec((3, 5, 7), ge=1, le=31)
    expands: tuple[int, ...] = spec((3, 6), ge=1, le=64)
    zero: bool = True
    width_mult: float = spec(1.0, gt=0, le=16)
    # mobilenetv2: MBConv candidates (expand = ratio), head 1x1 conv + pool/classifier (ProxylessNAS).
    # mobilenetv3: MBConv3 candidates (middle width = make_divisible(in x ratio)), h-swish stem, head
    # 1x1 conv to final_width, pool, 1x1 feature mix to feature_width, classifier (Once-for-All).
    family: str = spec("mobilenetv2", choices=("mobilenetv2", "mobilenetv3"))
    final_width: int = spec(0, ge=0, le=100_000)
    _layers: list = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        check_fields(self)
        if not self.stages:
            raise UserError(f"space {self.name!r}: needs at least one stage")
        if not self.kernels or not self.expands:
            raise UserError(f"space {self.name!r}: needs at least one kernel and one expand ratio")
        if (self.family == "mobilenetv3") != (self.final_width > 0):
            raise UserError(f"space {self.name!r}: final_width is the mobilenetv3 family's (and it needs "
                            f"one)")
        if not self._v3 and any(stage.se or stage.hs for stage in self.stages):
            raise UserError(f"space {self.name!r}: stages with se or hs need family mobilenetv3")
        # BlockSpec validates every number; building the layers once checks the whole space.
        object.__setattr__(self, "_layers", self._build_layers())

    @property
    def ops(self) -> list[str]:
        ops = [op_name(k, e) for k in self.kernels for e in self.expands]
        return ops + [ZERO] if self.zero else ops

    def _width(self, width: int) -> int:
        return make_divisible(width * self.width_mult)

    @property
    def _v3(self) -> bool:
        return self.family == "mobilenetv3"

    def _stem(self) -> BlockSpec:
        r = self.resolution
        return BlockSpec("conv", r, r, self.in_channels, self._width(self.stem_width),
                         kernel=3, stride=self.stem_stride, hs=self._v3)

    def _first(self, kernel: int = 3) -> BlockSpec:
        stem = self._stem()
        h, w, c, out_c = stem.out_h, stem.out_w, stem.out_c, self._width(self.first_width)
        if self._v3:
            return BlockSpec("mbconv3", h, w, c, out_c, kernel=kernel, mid=c, idskip=c == out_c)
        return BlockSpec("mbconv", h, w, c, out_c, kernel=kernel, stride=1, expand=1)

    def _candidate(self, stage: Stage, h: int, w: int, c: int, out_c: int, kernel: int, stride: int,
                   expand: int, skip: bool) -> BlockSpec:
        if self._v3:
            return BlockSpec("mbconv3", h, w, c, out_c, kernel=kernel, stride=stride,
                             mid=make_divisible(round(c * expand)), idskip=skip, se=stage.se,
                             hs=stage.hs)
        return BlockSpec("mbconv", h, w, c, out_c, kernel=kernel, stride=stride, expand=expand,
                         idskip=skip)

    def _build_layers(self) -> list[Layer]:
        first = self._first()
        h, w, c = first.out_h, first.out_w, first.out_c
        layers = []
        for stage in self.stages:
            out_c = self._width(stage.width)
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                skip = stride == 1 and c == out_c
                cands = {op_name(k, e): self._candidate(stage, h, w, c, out_c, k, stride, e, skip)
                         for k in self.kernels for e in self.expands}
                if self.zero and skip and i >= stage.min_depth:
                    cands[ZERO] = BlockSpec("zero", h, w, c, c)
                layers.append(Layer(len(layers), cands))
                h, w, c = out_size(h, stride), out_size(w, stride), out_c
        return layers

    def layers(self) -> list[Layer]:
        return self._layers

    def prefix(self) -> list[BlockSpec]:
        """The fixed layers before the searchable ones: stem and first block."""
        return [self._stem(), self._first()]

    def head(self) -> list[BlockSpec]:
        """The fixed layers after the searchable ones: feature mix and classifier (and, in the
        mobilenetv3 family, the final expansion and the pool before them)."""
        last = self._layers[-1].candidates[self.ops[0]]
        feature = self._width(self.feature_width) if self.width_mult > 1 else self.feature_width
        if self._v3:
            final = self._width(self.final_width) if self.width_mult > 1 else self.final_width
            expand = BlockSpec("conv", last.out_h, last.out_w, last.out_c, final, kernel=1, hs=True)
            return [expand, BlockSpec("pool", expand.out_h, expand.out_w, final, final),
                    BlockSpec("feature_mix", 1, 1, final, feature),
                    BlockSpec("linear", 1, 1, feature, self.classes)]
        mix = BlockSpec("conv", last.out_h, last.out_w, last.out_c, feature, kernel=1, stride=1)
        return [mix, BlockSpec("linear", mix.out_h, mix.out_w, mix.out_c, self.classes)]

    def fixed(self) -> list[BlockSpec]:
        """Every layer that is the same in all architectures: stem, first block, head."""
        return self.prefix() + self.head()

    @property
    def total_stride(self) -> int:
        """How much the network shrinks its input: the stem's stride times every stage's."""
        stride = self.stem_stride
        for stage in self.stages:
            stride *= stage.stride
        return stride

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int]:
        """The NCHW shape a network of this space takes."""
        return (batch, self.in_channels, self.resolution, self.resolution)

    def blocks(self) -> list[BlockSpec]:
        """The unique blocks to profile, in network order. As in the published tables, the first
        block is profiled at every candidate kernel; `zero` ops cost nothing and are not profiled."""
        # (Once-for-All's tables hold only the 3x3 first block its networks have.)
        firsts = [self._first()] if self._v3 else [self._first(k) for k in self.kernels]
        specs = [self._stem()] + firsts
        for layer in self._layers:
            specs += [s for s in layer.candidates.values() if s.profiled]
        specs += self.head()
        return list(dict.fromkeys(specs))

    def check_choices(self, choices) -> list[str]:
        if not isinstance(choices, list) or len(choices) != len(self._layers):
            n = len(choices) if isinstance(choices, list) else "no list of"
            raise UserError(f"space {self.name!r} has {len(self._layers)} searchable layers, "
                            f"the architecture gives {n} choices")
        for layer, choice in zip(self._layers, choices):
            if choice not in layer.candidates:
                raise UserError(f"layer {layer.index}: {choice!r} is not a candidate "
                                f"(candidates: {', '.join(layer.ops)})")
        return choices

    def network(self, choices: list[str]) -> list[BlockSpec]:
        """The BlockSpecs of one architecture, in order (zero layers included)."""
        self.check_choices(choices)
        chosen = [layer.candidates[c] for layer, c in zip(self._layers, choices)]
        return self.prefix() + chosen + self.head()

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        d["stages"] = [asdict(s) for s in self.stages]
        d["kernels"], d["expands"] = list(self.kernels), list(self.expands)
        return d


def _ofa_mbv3(stem: int, widths: list[int], final: int, feature: int) -> dict:
    """Once-for-All's MobileNetV3 space at one width: elastic kernel 3/5/7, expansion 3/4/6 and
    depth 2-4 per stage; squeeze-excite and h-swish where MobileNetV3-Large has them."""
    se, hs = (False, True, False, True, True), (False, False, True, True, True)
    strides = (2, 2, 2, 1, 2)
    return dict(family="mobilenetv3", resolution=224, stem_width=stem, first_width=stem,
                stages=[dict(width=w, repeats=4, stride=st, min_depth=2, **({"se": True} if e else {}),
                             **({"hs": True} if h else {}))
                        for w, st, e, h in zip(widths, strides, se, hs)],
                final_width=final, feature_width=feature, classes=1000, expands=(3, 4, 6))


PRESETS = {
    # The ImageNet space of ProxylessNAS (mobile setting); its blocks are the published Pixel-1 keys.
    "proxyless-mobile": dict(
        resolution=224, stem_width=32, first_width=16,
        stages=[dict(width=24, repeats=4, stride=2), dict(width=40, repeats=4, stride=2),
                dict(width=80, repeats=4, stride=2), dict(width=96, repeats=4, stride=1),
                dict(width=192, repeats=4, stride=2), dict(width=320, repeats=1, stride=1)],
        feature_width=1280, classes=1000),
    # ProxylessNAS's space at width 1.4, the space of its published proxyless_mobile_14.
    "proxyless-mobile-w1.4": dict(
        resolution=224, stem_width=32, first_width=16,
        stages=[dict(width=24, repeats=4, stride=2), dict(width=40, repeats=4, stride=2),
                dict(width=80, repeats=4, stride=2), dict(width=96, repeats=4, stride=1),
                dict(width=192, repeats=4, stride=2), dict(width=320, repeats=1, stride=1)],
        feature_width=1280, classes=1000, width_mult=1.4),
    # Once-for-All's MobileNetV3 space at width 1.0, where most of its published mobile subnets
    # live: MobileNetV3-Large's widths.
    "ofa-mbv3-w1.0": _ofa_mbv3(16, [24, 40, 80, 112, 160], 960, 1280),
    # At width 1.2: 1.2x MobileNetV3-Large's widths, rounded to multiples of 8.
    "ofa-mbv3-w1.2": _ofa_mbv3(24, [32, 48, 96, 136, 192], 1152, 1536),
    # Small enough to profile in about a minute on one CPU core and search on digits in minutes.
    "tiny": dict(
        resolution=32, stem_width=16, first_width=8,
        stages=[dict(width=16, repeats=3, stride=2), dict(width=24, repeats=3, stride=2),
                dict(width=32, repeats=2, stride=1)],
        feature_width=128, classes=10),
}


def space_from_dict(d: dict, source: str) -> SearchSpace:
    return load_record(SearchSpace, d, source)


def list_spaces() -> list[str]:
    return sorted(PRESETS)


def split_resolution(name: str) -> tuple[str, int | None]:
    """`NAME@R` -> (NAME, R): a space taken at R pixels; a name without @R -> (name, None)."""
    base, at, number = name.rpartition("@")
    if at and number.isdigit() and base:
        return base, int(number)
    return name, None


def with_resolution(name: str, resolution: int | None) -> str:
    """The name of space `name` at `resolution` (None: as named)."""
    return name if resolution is None else f"{split_resolution(name)[0]}@{resolution}"


def get_space(name: str, resolution: int | None = None) -> SearchSpace:
    """A preset by name, or a user space from a .yaml/.yml/.json file; `NAME@R` (or `resolution`)
    takes it at R pixels, and the space is then named `NAME@R` wherever it is recorded."""
    base, at = split_resolution(with_resolution(name, resolution))
    space = _named_space(base)
    if at is None or at == space.resolution:
        return space
    stride = space.total_stride
    if at < stride:
        raise UserError(f"space {space.name!r} cannot take resolution {at}: its total stride is "
                        f"{stride}, so it needs at least {stride} pixels")
    return space_from_dict(dict(space.to_dict(), resolution=at, name=f"{space.name}@{at}"),
                           f"{name} at resolution {at}")


def _named_space(name: str) -> SearchSpace:
    if name in PRESETS:
        return space_from_dict(dict(PRESETS[name], name=name), f"preset {name}")
    if Path(name).suffix.lower() in (".yaml", ".yml", ".json"):
        space = space_from_dict(read_mapping(Path(name), "space file"), name)
        if space.name in PRESETS:
            raise UserError(f"{name}: space name {space.name!r} is taken by a preset; choose another")
        if split_resolution(space.name)[1] is not None:
            raise UserError(f"{name}: space name {space.name!r} ends in @NUMBER, which names a "
                            f"resolution; choose another")
        return space
    raise UserError(f"unknown space {name!r}; known: {', '.join(list_spaces())} "
                    f"(or a .yaml/.json space file, either one @RESOLUTION)")

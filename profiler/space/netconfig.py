"""net.config files: the networks Once-for-All and ProxylessNAS publish, read into the choices of the
preset space they belong to, and written from a space's choices for their own code to build.

A net.config is the JSON their `build_from_config` takes:

    {"name": "MobileNetV3" (Once-for-All) | "ProxylessNASNets" (ProxylessNAS, Once-for-All),
     "first_conv": ConvLayer, "blocks": [block, ...],
     "final_expand_layer": ConvLayer (MobileNetV3 only), "feature_mix_layer": ConvLayer,
     "classifier": LinearLayer, "bn": {...}}

    block: {"name": "MobileInvertedResidualBlock" | "ResidualBlock",
            "mobile_inverted_conv" | "conv": MBInvertedConvLayer | MBConvLayer | ZeroLayer | null,
            "shortcut": IdentityLayer | null}

An inverted residual's middle width is `mid_channels`, or in x `expand_ratio` rounded when that is
null (no expansion at ratio 1). Once-for-All's subnets leave a skipped layer out (a stage of depth 2
lists 2 blocks); ProxylessNAS's nets list it as a ZeroLayer block. The image size is no part of a
net.config: Once-for-All gives it in the run.config beside it (`image_size`).

Reading finds the preset of the net's family whose layers the net's blocks are candidates of (its
widths, strides, squeeze-and-excitation and activations decide); a net that fits none is refused
with the first block that does not fit the preset it fits furthest. Writing gives Once-for-All's
format for mobilenetv3 spaces (skipped layers left out) and ProxylessNAS's for mobilenetv2 ones
(skipped layers as ZeroLayer blocks), with only the fields both codes' constructors take, so the old
and the new releases of each read them. Fields that are training settings, not architecture
(dropout, batch norm's momentum and eps, bias), are not read, and written as the codes' defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from profiler.errors import UserError
from profiler.files import write_json
from profiler.records import _kind, check_fields, load_record, read_mapping, spec
from .blockspec import BlockSpec
from .spaces import PRESETS, ZERO, SearchSpace, get_space

NETS = {"MobileNetV3": "mobilenetv3", "ProxylessNASNets": "mobilenetv2"}
BLOCKS = ("MobileInvertedResidualBlock", "ResidualBlock")
INVERTED = ("MBInvertedConvLayer", "MBConvLayer")
# The activations each family's layers may have (which one a layer has is the space's to say).
ACTS = {"mobilenetv3": ("relu", "h_swish"), "mobilenetv2": ("relu6",)}
WIDTH = dict(ge=1, le=100_000)


@dataclass(frozen=True)
class ConvLayer:
    in_channels: int = spec(**WIDTH)
    out_channels: int = spec(**WIDTH)
    kernel_size: int = spec(3, ge=1, le=31)
    stride: int = spec(1, ge=1, le=8)
    act_func: str | None = "relu"
    dilation: int = spec(1, ge=1, le=64)
    groups: int = spec(1, ge=1, le=100_000)
    has_shuffle: bool = False
    use_se: bool = False

    def __post_init__(self):
        check_fields(self)
        if (self.dilation, self.groups, self.has_shuffle, self.use_se) != (1, 1, False, False):
            raise UserError("a dilated, grouped, shuffled or squeeze-and-excitation ConvLayer is "
                            "in no pxnas space")


@dataclass(frozen=True)
class InvertedLayer:
    """MBInvertedConvLayer (ProxylessNAS, Once-for-All before 2020) or MBConvLayer (after)."""
    in_channels: int = spec(**WIDTH)
    out_channels: int = spec(**WIDTH)
    kernel_size: int = spec(3, ge=1, le=31)
    stride: int = spec(1, ge=1, le=8)
    expand_ratio: float = spec(6, gt=0, le=64)
    mid_channels: int | None = spec(None, ge=1, le=1_000_000)
    act_func: str | None = "relu6"
    use_se: bool = False

    def __post_init__(self):
        check_fields(self)

    @property
    def middle(self) -> int:
        if self.mid_channels is not None:
            return self.mid_channels
        return self.in_channels if self.expand_ratio == 1 else round(self.in_channels * self.expand_ratio)

    def describe(self) -> str:
        extras = "".join([", SE" if self.use_se else "", f", {self.act_func}" if self.act_func else ""])
        return (f"{self.in_channels}->{self.out_channels}, kernel {self.kernel_size}, stride "
                f"{self.stride}, expand {self.expand_ratio:g} ({self.middle} middle){extras}")


@dataclass(frozen=True)
class LinearLayer:
    in_features: int = spec(**WIDTH)
    out_features: int = spec(ge=1, le=1_000_000)

    def __post_init__(self):
        check_fields(self)


@dataclass(frozen=True)
class Block:
    layer: InvertedLayer | None  # None: the layer is skipped (ZeroLayer)
    shortcut: bool  # an identity shortcut
    where: str


@dataclass(frozen=True)
class NetConfig:
    family: str
    first_conv: ConvLayer
    blocks: tuple[Block, ...]
    final_expand_layer: ConvLayer | None
    feature_mix_layer: ConvLayer | None
    classifier: LinearLayer


class Misfit(Exception):
    """The net is not an architecture of one space: `depth` is how far into the net it fitted."""

    def __init__(self, depth: int, message: str):
        super().__init__(message)
        self.depth = depth


def _layer(data, where: str, known: tuple[str, ...]) -> str | None:
    """The type name of a layer's config (None for null), refusing one the net cannot hold here."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a layer's mapping, got {_kind(data)}")
    name = data.get("name")
    if name not in known:
        raise UserError(f"{where}: unknown layer type {_kind(name)}; known here: {', '.join(known)}")
    return name


def _record(cls, data, where: str):
    return load_record(cls, {k: v for k, v in data.items() if k != "name"}, where, extra="ignore")


def _block(data, index: int, path: str) -> Block:
    short = f"blocks[{index}]"
    where = f"{path}: {short}"
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a block's mapping, got {_kind(data)}")
    if data.get("name") not in BLOCKS:
        raise UserError(f"{where}: unknown block type {_kind(data.get('name'))}; known: "
                        f"{', '.join(BLOCKS)}")
    key = "mobile_inverted_conv" if "mobile_inverted_conv" in data else "conv"
    if key not in data:
        raise UserError(f"{where}: no conv (or mobile_inverted_conv) layer")
    conv = data[key]
    name = _layer(conv, f"{where}.{key}", INVERTED + ("ZeroLayer",))
    shortcut = _layer(data.get("shortcut"), f"{where}.shortcut", ("IdentityLayer", "ZeroLayer"))
    layer = _record(InvertedLayer, conv, f"{where}.{key}") if name in INVERTED else None
    return Block(layer, shortcut == "IdentityLayer", short)


def parse_net_config(data, where: str) -> NetConfig:
    """A net.config's layers, each checked; which space they fit is `fit`'s to say."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: not a net.config (expected a mapping, got {_kind(data)})")
    name = data.get("name")
    if name is None and isinstance(data.get("blocks"), list):
        name = "MobileNetV3" if data.get("final_expand_layer") else "ProxylessNASNets"
    if name not in NETS:
        raise UserError(f"{where}: not a net.config of a network pxnas reads (name {_kind(name)}; "
                        f"known: {', '.join(NETS)})")
    if not isinstance(data.get("blocks"), list) or not data["blocks"]:
        raise UserError(f"{where}: blocks: expected a list of blocks, got {_kind(data.get('blocks'))}")
    family = NETS[name]

    def conv(key):
        found = _layer(data.get(key), f"{where}: {key}", ("ConvLayer",))
        return _record(ConvLayer, data[key], f"{where}: {key}") if found else None

    first_conv = conv("first_conv")
    if first_conv is None:
        raise UserError(f"{where}: first_conv: a ConvLayer is needed")
    _layer(data.get("classifier"), f"{where}: classifier", ("LinearLayer",))
    if data.get("classifier") is None:
        raise UserError(f"{where}: classifier: a LinearLayer is needed")
    return NetConfig(
        family, first_conv,
        tuple(_block(b, i, where) for i, b in enumerate(data["blocks"])),
        conv("final_expand_layer") if family == "mobilenetv3" else None,
        conv("feature_mix_layer"), _record(LinearLayer, data["classifier"], f"{where}: classifier"))


# ---------------------------------------------------------------------------------------------
# Fitting a net to a space


def _act(act: str | None, family: str, where: str, depth: int) -> bool:
    """Whether a layer's activation is h-swish; one its family has not fits no space of it."""
    if act not in ACTS[family]:
        raise Misfit(depth, f"{where} has activation {_kind(act)}; the {family} spaces' layers "
                            f"have {' or '.join(ACTS[family])}")
    return act == "h_swish"


def _inverted_spec(block: Block, family: str, h: int, w: int, depth: int) -> BlockSpec:
    layer = block.layer
    hs = _act(layer.act_func, family, block.where, depth)
    try:
        if family == "mobilenetv3":
            return BlockSpec("mbconv3", h, w, layer.in_channels, layer.out_channels,
                             kernel=layer.kernel_size, stride=layer.stride, mid=layer.middle,
                             idskip=block.shortcut, se=layer.use_se, hs=hs)
        ratio = layer.expand_ratio
        if layer.use_se or ratio != int(ratio) or layer.middle != round(layer.in_channels * ratio):
            raise Misfit(depth, f"{block.where} ({layer.describe()}) is no MBConv of the "
                                f"mobilenetv2 spaces (an integer expand ratio, no SE)")
        return BlockSpec("mbconv", h, w, layer.in_channels, layer.out_channels,
                         kernel=layer.kernel_size, stride=layer.stride, expand=int(ratio),
                         idskip=block.shortcut)
    except UserError as exc:
        raise UserError(f"{block.where}: {exc}") from None


def _conv_spec(conv: ConvLayer, family: str, h: int, w: int, where: str, depth: int) -> BlockSpec:
    hs = _act(conv.act_func, family, where, depth)
    try:
        return BlockSpec("conv", h, w, conv.in_channels, conv.out_channels, kernel=conv.kernel_size,
                         stride=conv.stride, hs=hs)
    except UserError as exc:
        raise Misfit(depth, f"{where} ({conv.in_channels}->{conv.out_channels}, kernel "
                            f"{conv.kernel_size}): {exc}") from None


def _expect(got: BlockSpec, want: BlockSpec, what: str, space: SearchSpace, depth: int) -> None:
    if got != want:
        raise Misfit(depth, f"{what} is {got.key}; {space.name} has {want.key} there")


def _candidates(layer, space: SearchSpace) -> str:
    spec = next(iter(layer.candidates.values()))
    extras = "".join([", SE" if spec.se else "", ", h_swish" if spec.hs else ""])
    return (f"takes {spec.in_c}->{spec.out_c} at stride "
            f"{spec.stride}, kernel {'/'.join(map(str, space.kernels))}, expand "
            f"{'/'.join(map(str, space.expands))}{extras}"
            + (", or zero" if ZERO in layer.candidates else ""))


def fit(space: SearchSpace, net: NetConfig) -> list[str]:
    """The choices of `space` that make `net` (Misfit if none do)."""
    if space.family != net.family:
        raise Misfit(0, f"{space.name} is a {space.family} space, the net a {net.family} one")
    stem, first = space.prefix()
    r = space.resolution
    _expect(_conv_spec(net.first_conv, net.family, r, r, "first_conv", 0), stem, "first_conv",
            space, 0)
    blocks = net.blocks
    if blocks[0].layer is None:
        raise Misfit(1, f"{blocks[0].where} is skipped; {space.name}'s first block is fixed")
    _expect(_inverted_spec(blocks[0], net.family, first.in_h, first.in_w, 1), first,
            blocks[0].where, space, 1)
    choices, j, layers = [], 1, iter(space.layers())
    for stage in space.stages:
        for i in range(stage.repeats):
            layer = next(layers)
            spec = next(iter(layer.candidates.values()))
            block = blocks[j] if j < len(blocks) else None
            # A stage ends early where a block of the next one comes (Once-for-All's depth).
            ends = block is None or (i > 0 and block.layer is not None and (
                block.layer.stride != 1 or block.layer.in_channels != spec.in_c
                or block.layer.out_channels != spec.in_c))
            if ends:
                if ZERO not in layer.candidates:
                    where = block.where if block else "blocks"
                    raise Misfit(j + 1, f"{where}: {space.name}'s layer {layer.index} is never "
                                        f"skipped, and the net has no block for it (it "
                                        f"{_candidates(layer, space)})")
                choices.append(ZERO)
                continue
            j += 1
            if block.layer is None:
                if ZERO not in layer.candidates:
                    raise Misfit(j, f"{block.where} is skipped; {space.name}'s layer "
                                    f"{layer.index} never is (it {_candidates(layer, space)})")
                choices.append(ZERO)
                continue
            got = _inverted_spec(block, net.family, spec.in_h, spec.in_w, j)
            op = next((op for op, s in layer.candidates.items() if s == got), None)
            if op is None:
                raise Misfit(j, f"{block.where} ({block.layer.describe()}) does not fit: "
                                f"{space.name}'s layer {layer.index} {_candidates(layer, space)}")
            choices.append(op)
    if j < len(blocks):
        raise Misfit(j + 1, f"{blocks[j].where}: {space.name} has no layer for it (the net has "
                            f"{len(blocks)} blocks)")
    _fit_head(space, net, len(blocks) + 1)
    return choices


def _fit_head(space: SearchSpace, net: NetConfig, depth: int) -> None:
    head = space.head()
    last = head[0]
    layers = [("final_expand_layer", net.final_expand_layer)] if net.family == "mobilenetv3" else []
    layers.append(("feature_mix_layer", net.feature_mix_layer))
    wanted = [head[0], head[2]] if net.family == "mobilenetv3" else [head[0]]
    for (key, conv), want in zip(layers, wanted):
        if conv is None:
            raise Misfit(depth, f"{key}: the net has none; {space.name} has {want.key}")
        if want.kind == "feature_mix":  # a 1x1 conv on the pooled 1x1 map
            _act(conv.act_func, net.family, key, depth)
            try:
                got = BlockSpec("feature_mix", 1, 1, conv.in_channels, conv.out_channels,
                                kernel=conv.kernel_size, stride=conv.stride)
            except UserError as exc:
                raise Misfit(depth, f"{key}: {exc}") from None
        else:
            got = _conv_spec(conv, net.family, last.in_h, last.in_w, key, depth)
        _expect(got, want, key, space, depth)
        depth += 1
    classifier = head[-1]
    _expect(BlockSpec("linear", classifier.in_h, classifier.in_w, net.classifier.in_features,
                      net.classifier.out_features), classifier, "classifier", space, depth)


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class _ImageSize:
    image_size: int = spec(ge=1, le=4096)

    def __post_init__(self):
        check_fields(self)


def read_image_size(path: Path) -> int:
    """The image size of a Once-for-All run.config."""
    data = read_mapping(path, "run.config", json_only=True)
    if not isinstance(data, dict):
        raise UserError(f"{path}: not a run.config (expected a mapping, got {_kind(data)})")
    size = data.get("image_size")
    if isinstance(size, list):
        if len(size) != 1:  # an elastic training's sizes: a subnet runs at one
            raise UserError(f"{path}: image_size gives {len(size)} sizes; a net runs at one "
                            f"(give it with --resolution)")
        size = size[0]
    return load_record(_ImageSize, {"image_size": size}, str(path)).image_size


def is_net_config(data) -> bool:
    return isinstance(data, dict) and "blocks" in data and "first_conv" in data


def beside(path: Path) -> Path | None:
    """The run.config beside a net.config, as Once-for-All publishes them, if there is one."""
    run = Path(path).parent / "run.config"
    return run if run.is_file() and Path(path).name != "run.config" else None


def import_net_config(path: Path, run_config: Path | None = None, resolution: int | None = None,
                      space: SearchSpace | None = None, data=None) -> tuple[SearchSpace, list[str]]:
    """The space a net.config's network belongs to and its choices there: the presets of its family
    are tried, at the image size of `resolution`, else of `run_config` (or `space` alone, as it
    is). `data` is the file's content when it has been read already."""
    path = Path(path)
    if data is None:
        data = read_mapping(path, "net.config", json_only=True)
    net = parse_net_config(data, str(path))
    if resolution is None and run_config is not None:
        resolution = read_image_size(run_config)
    tried = [space] if space is not None else \
        [get_space(name) for name in PRESETS if get_space(name).family == net.family]
    misfits = []
    for candidate in tried:
        try:
            choices = fit(candidate, net)
            break
        except Misfit as exc:
            misfits.append(exc)
        except UserError as exc:  # a block no network can have
            raise UserError(f"{path}: {exc}") from None
    else:
        furthest = max(misfits, key=lambda m: m.depth)  # the first of those that fit as far
        raise UserError(f"{path}: fits no {'preset ' if space is None else ''}space: {furthest}")
    if space is not None:
        return space, choices
    if resolution is None and candidate.family == "mobilenetv3":
        raise UserError(f"{path}: fits {candidate.name}, whose nets run at any image size: give "
                        f"it with --run-config RUN.config (Once-for-All's, beside the net.config) "
                        f"or --resolution R")
    return get_space(candidate.name, resolution), choices


# ---------------------------------------------------------------------------------------------
# Writing


def _conv(spec: BlockSpec, act: str, use_bn: bool = True) -> dict:
    return {"name": "ConvLayer", "in_channels": spec.in_c, "out_channels": spec.out_c,
            "kernel_size": spec.kernel, "stride": spec.stride, "dilation": 1, "groups": 1,
            "bias": False, "has_shuffle": False, "use_bn": use_bn, "act_func": act,
            "dropout_rate": 0, "ops_order": "weight_bn_act"}


def _identity(channels: int) -> dict:
    return {"name": "IdentityLayer", "in_channels": channels, "out_channels": channels,
            "use_bn": False, "act_func": None, "dropout_rate": 0, "ops_order": "weight_bn_act"}


def _linear(spec: BlockSpec, dropout: float) -> dict:
    return {"name": "LinearLayer", "in_features": spec.in_c, "out_features": spec.out_c,
            "bias": True, "use_bn": False, "act_func": None, "dropout_rate": dropout,
            "ops_order": "weight_bn_act"}


def _block_config(spec: BlockSpec, ratio: int, v3: bool) -> dict:
    conv = {"name": "MBInvertedConvLayer", "in_channels": spec.in_c, "out_channels": spec.out_c,
            "kernel_size": spec.kernel, "stride": spec.stride, "expand_ratio": ratio}
    if v3:  # ProxylessNAS's layer takes no more than the fields above
        conv |= {"mid_channels": spec.middle, "act_func": "h_swish" if spec.hs else "relu",
                 "use_se": spec.se}
    return {"name": "MobileInvertedResidualBlock", "mobile_inverted_conv": conv,
            "shortcut": _identity(spec.out_c) if spec.idskip else None}


def _ratio(op: str) -> int:
    return int(op.rpartition("_e")[2])


def net_config(space: SearchSpace, choices: list[str]) -> dict:
    """The net.config of an architecture: Once-for-All's format for a mobilenetv3 space,
    ProxylessNAS's for a mobilenetv2 one."""
    network = space.network(choices)
    stem, first, chosen, head = network[0], network[1], network[2:-len(space.head())], space.head()
    v3 = space.family == "mobilenetv3"
    blocks = [_block_config(first, 1, v3)]
    for spec, op in zip(chosen, choices):
        if op != ZERO:
            blocks.append(_block_config(spec, _ratio(op), v3))
        elif not v3:  # Once-for-All's subnets leave a skipped layer out, ProxylessNAS's list it
            blocks.append({"name": "MobileInvertedResidualBlock",
                           "mobile_inverted_conv": {"name": "ZeroLayer", "stride": 1},
                           "shortcut": _identity(spec.in_c)})
    if v3:
        # As Once-for-All's MobileNetV3 and its subnets: dropout 0.1 before the classifier.
        return {"name": "MobileNetV3", "bn": {"momentum": 0.1, "eps": 1e-5},
                "first_conv": _conv(stem, "h_swish"), "blocks": blocks,
                "final_expand_layer": _conv(head[0], "h_swish"),
                "feature_mix_layer": _conv(head[2], "h_swish", use_bn=False),
                "classifier": _linear(head[3], 0.1)}
    # As ProxylessNAS trains its nets: batch norm eps 1e-3, no dropout.
    return {"name": "ProxylessNASNets", "bn": {"momentum": 0.1, "eps": 1e-3},
            "first_conv": _conv(stem, "relu6"), "blocks": blocks,
            "feature_mix_layer": _conv(head[0], "relu6"), "classifier": _linear(head[1], 0)}


def run_config(space: SearchSpace) -> dict:
    """The part of Once-for-All's run.config an architecture gives: its image size."""
    return {"image_size": space.resolution}



def save_net_config(path: Path, space: SearchSpace, choices: list[str],
                    run_config_path: Path | None = None) -> None:
    """Write an architecture's net.config (and, at `run_config_path`, its run.config)."""
    write_json(path, net_config(space, choices))
    if run_config_path is not None:
        write_json(run_config_path, run_config(space))

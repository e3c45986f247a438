"""net.config files of Once-for-All and ProxylessNAS: read into the preset they belong to, written for
their own code, round trips, refusals; and the ofa-mbv3-w1.0 preset's keys, listed by hand."""

import copy
import json
import random

import pytest

from profiler.errors import UserError
from profiler.space.arch import load_arch
from profiler.space.blockspec import parse_key
from profiler.space.netconfig import import_net_config, net_config
from profiler.space.spaces import PRESETS, get_space

from conftest import assert_bad_input
from search_fixtures import synthetic_table


def _ofa_w10_keys_by_hand(r):
    # From Once-for-All's MobileNetV3 at width 1.0 (MobileNetV3-Large's widths), not from the code
    # under test: middle widths in x {3, 4, 6}, SE in stages 2, 4, 5, h-swish in stages 3-5.
    s0, s1, s2, s3, s4 = {224: (112, 56, 28, 14, 7), 192: (96, 48, 24, 12, 6)}[r]
    keys = [f"Conv-input:{r}x{r}x3-output:{s0}x{s0}x16",
            f"expanded_conv-input:{s0}x{s0}x16-output:{s0}x{s0}x16-expand:16-kernel:3-stride:1"
            f"-idskip:1-se:0-hs:0",
            f"Conv_1-input:{s4}x{s4}x160-output:{s4}x{s4}x960",
            f"AvgPool2D-input:{s4}x{s4}x960-output:1x1x960",
            "Conv_2-input:1x1x960-output:1x1x1280", "Logits-input:1x1x1280-output:1000"]
    for inp, out, stride, skip, mids, se, hs in [
            (f"{s0}x{s0}x16", f"{s1}x{s1}x24", 2, 0, (48, 64, 96), 0, 0),
            (f"{s1}x{s1}x24", f"{s1}x{s1}x24", 1, 1, (72, 96, 144), 0, 0),
            (f"{s1}x{s1}x24", f"{s2}x{s2}x40", 2, 0, (72, 96, 144), 1, 0),
            (f"{s2}x{s2}x40", f"{s2}x{s2}x40", 1, 1, (120, 160, 240), 1, 0),
            (f"{s2}x{s2}x40", f"{s3}x{s3}x80", 2, 0, (120, 160, 240), 0, 1),
            (f"{s3}x{s3}x80", f"{s3}x{s3}x80", 1, 1, (240, 320, 480), 0, 1),
            (f"{s3}x{s3}x80", f"{s3}x{s3}x112", 1, 0, (240, 320, 480), 1, 1),
            (f"{s3}x{s3}x112", f"{s3}x{s3}x112", 1, 1, (336, 448, 672), 1, 1),
            (f"{s3}x{s3}x112", f"{s4}x{s4}x160", 2, 0, (336, 448, 672), 1, 1),
            (f"{s4}x{s4}x160", f"{s4}x{s4}x160", 1, 1, (480, 640, 960), 1, 1)]:
        keys += [f"expanded_conv-input:{inp}-output:{out}-expand:{mid}-kernel:{k}-stride:{stride}"
                 f"-idskip:{skip}-se:{se}-hs:{hs}" for k in (3, 5, 7) for mid in mids]
    return keys


@pytest.mark.parametrize("r", [224, 192])
def test_ofa_mbv3_w10_has_once_for_alls_keys(r):
    got = [b.key for b in get_space("ofa-mbv3-w1.0", r).blocks()]
    assert sorted(got) == sorted(_ofa_w10_keys_by_hand(r)) and len(got) == 96
    assert all(parse_key(k).key == k for k in got)


# A Once-for-All subnet of the width-1.0 space, written block by block as its net.config has it:
# (in, out, kernel, stride, expand ratio, middle, SE, activation); depths 2, 3, 4, 2, 3.
OFA_BLOCKS = [
    (16, 16, 3, 1, 1, None, False, "relu"),
    (16, 24, 5, 2, 4, 64, False, "relu"), (24, 24, 3, 1, 3, 72, False, "relu"),
    (24, 40, 7, 2, 6, 144, True, "relu"), (40, 40, 5, 1, 4, 160, True, "relu"),
    (40, 40, 3, 1, 3, 120, True, "relu"),
    (40, 80, 3, 2, 6, 240, False, "h_swish"), (80, 80, 5, 1, 3, 240, False, "h_swish"),
    (80, 80, 7, 1, 4, 320, False, "h_swish"), (80, 80, 3, 1, 6, 480, False, "h_swish"),
    (80, 112, 5, 1, 6, 480, True, "h_swish"), (112, 112, 3, 1, 4, 448, True, "h_swish"),
    (112, 160, 7, 2, 6, 672, True, "h_swish"), (160, 160, 5, 1, 3, 480, True, "h_swish"),
    (160, 160, 3, 1, 6, 960, True, "h_swish")]
OFA_CHOICES = ["k5_e4", "k3_e3", "zero", "zero", "k7_e6", "k5_e4", "k3_e3", "zero",
               "k3_e6", "k5_e3", "k7_e4", "k3_e6", "k5_e6", "k3_e4", "zero", "zero",
               "k7_e6", "k5_e3", "k3_e6", "zero"]


def _identity(c):
    return {"name": "IdentityLayer", "in_channels": c, "out_channels": c, "use_bn": False,
            "act_func": None, "dropout_rate": 0, "ops_order": "weight_bn_act"}


def _conv(cin, cout, k, s, act, **more):
    return {"name": "ConvLayer", "in_channels": cin, "out_channels": cout, "kernel_size": k,
            "stride": s, "act_func": act, **more}


def ofa_subnet(new_release=False):
    """The subnet above as Once-for-All writes it: MobileInvertedResidualBlock and
    MBInvertedConvLayer before its 2020 release, ResidualBlock and MBConvLayer after."""
    block, conv, layer = (("ResidualBlock", "conv", "MBConvLayer") if new_release else
                          ("MobileInvertedResidualBlock", "mobile_inverted_conv",
                           "MBInvertedConvLayer"))
    blocks = [{"name": block, conv: {"name": layer, "in_channels": i, "out_channels": o,
                                     "kernel_size": k, "stride": s, "expand_ratio": e,
                                     "mid_channels": mid, "act_func": act, "use_se": se},
               "shortcut": _identity(o) if s == 1 and i == o else None}
              for i, o, k, s, e, mid, se, act in OFA_BLOCKS]
    return {"name": "MobileNetV3", "bn": {"momentum": 0.1, "eps": 1e-5},
            "first_conv": _conv(3, 16, 3, 2, "h_swish", use_bn=True), "blocks": blocks,
            "final_expand_layer": _conv(160, 960, 1, 1, "h_swish", use_bn=True),
            "feature_mix_layer": _conv(960, 1280, 1, 1, "h_swish", use_bn=False, bias=False),
            "classifier": {"name": "LinearLayer", "in_features": 1280, "out_features": 1000,
                           "dropout_rate": 0.1}}


# ProxylessNAS's mobile net as its net.config lists it: every layer, skipped ones as ZeroLayer.
# (in, out, kernel, stride, expand ratio), or None for a skipped layer.
PROXYLESS_BLOCKS = [
    (32, 16, 3, 1, 1),
    (16, 24, 5, 2, 3), (24, 24, 3, 1, 3), None, None,
    (24, 40, 7, 2, 3), (40, 40, 3, 1, 3), (40, 40, 5, 1, 3), (40, 40, 5, 1, 3),
    (40, 80, 7, 2, 6), (80, 80, 5, 1, 3), (80, 80, 5, 1, 3), (80, 80, 5, 1, 3),
    (80, 96, 5, 1, 6), (96, 96, 5, 1, 3), (96, 96, 5, 1, 3), (96, 96, 5, 1, 3),
    (96, 192, 7, 2, 6), (192, 192, 7, 1, 6), (192, 192, 7, 1, 3), (192, 192, 7, 1, 3),
    (192, 320, 7, 1, 6)]


def proxyless_net():
    blocks, width = [], None
    for b in PROXYLESS_BLOCKS:
        if b is None:
            blocks.append({"name": "MobileInvertedResidualBlock",
                           "mobile_inverted_conv": {"name": "ZeroLayer", "stride": 1},
                           "shortcut": _identity(width)})
            continue
        i, o, k, s, e = b
        width = o
        blocks.append({"name": "MobileInvertedResidualBlock",
                       "mobile_inverted_conv": {"name": "MBInvertedConvLayer", "in_channels": i,
                                                "out_channels": o, "kernel_size": k, "stride": s,
                                                "expand_ratio": e},
                       "shortcut": _identity(o) if s == 1 and i == o else None})
    return {"name": "ProxylessNASNets", "bn": {"momentum": 0.1, "eps": 1e-3},
            "first_conv": _conv(3, 32, 3, 2, "relu6"), "blocks": blocks,
            "feature_mix_layer": _conv(320, 1280, 1, 1, "relu6"),
            "classifier": {"name": "LinearLayer", "in_features": 1280, "out_features": 1000}}


# The fields each layer's constructor takes (the `build_from_config(config)` of both codes is
# `Layer(**config)`): any other field is a TypeError there. Once-for-All's are those its releases
# before and after 2020 both take.
COMMON = {"ConvLayer": {"in_channels", "out_channels", "kernel_size", "stride", "dilation", "groups",
                        "bias", "has_shuffle", "use_bn", "act_func", "dropout_rate", "ops_order"},
          "IdentityLayer": {"in_channels", "out_channels", "use_bn", "act_func", "dropout_rate",
                            "ops_order"},
          "LinearLayer": {"in_features", "out_features", "bias", "use_bn", "act_func",
                          "dropout_rate", "ops_order"}}
TAKES = {
    "MobileNetV3": COMMON | {"MBInvertedConvLayer": {"in_channels", "out_channels", "kernel_size",
                                                     "stride", "expand_ratio", "mid_channels",
                                                     "act_func", "use_se"}},
    "ProxylessNASNets": COMMON | {"MBInvertedConvLayer": {"in_channels", "out_channels",
                                                          "kernel_size", "stride", "expand_ratio"},
                                  "ZeroLayer": {"stride"}}}
NET_KEYS = {"MobileNetV3": {"name", "bn", "first_conv", "blocks", "final_expand_layer",
                            "feature_mix_layer", "classifier"},
            "ProxylessNASNets": {"name", "bn", "first_conv", "blocks", "feature_mix_layer",
                                 "classifier"}}


def check_buildable(config, resolution):
    """What their build_from_config and forward need of a net.config: known layers with the fields
    their constructors take, channels that chain, shortcuts only where shapes are kept; returns
    the final feature map's size."""
    takes = TAKES[config["name"]]
    assert set(config) == NET_KEYS[config["name"]]

    def layer(cfg):
        fields = set(cfg) - {"name"}
        assert fields <= takes[cfg["name"]], (cfg["name"], fields - takes[cfg["name"]])
        return cfg

    size, c = resolution, 3
    first = layer(config["first_conv"])
    assert first["in_channels"] == c and first["kernel_size"] == 3
    size, c = -(-size // first["stride"]), first["out_channels"]
    for block in config["blocks"]:
        assert set(block) == {"name", "mobile_inverted_conv", "shortcut"}
        assert block["name"] == "MobileInvertedResidualBlock"
        conv = layer(block["mobile_inverted_conv"])
        if conv["name"] == "ZeroLayer":  # ProxylessNAS's forward: the block's output is its input
            assert block["shortcut"] is not None and conv["stride"] == 1
            continue
        assert conv["in_channels"] == c
        if block["shortcut"] is not None:
            assert layer(block["shortcut"])["in_channels"] == c == conv["out_channels"]
            assert conv["stride"] == 1
        if "mid_channels" in conv and conv["expand_ratio"] != 1:  # Once-for-All's rounding
            assert conv["mid_channels"] % 8 == 0
            assert abs(conv["mid_channels"] - c * conv["expand_ratio"]) < 8
        size, c = -(-size // conv["stride"]), conv["out_channels"]
    for key in ("final_expand_layer", "feature_mix_layer"):
        if key in config:
            conv = layer(config[key])
            assert conv["in_channels"] == c and conv["kernel_size"] == 1
            c = conv["out_channels"]
    assert layer(config["classifier"])["in_features"] == c
    return size


def normalised(config):
    """A net.config with the defaults of their constructors filled in, and the fields that are
    training settings (dropout, batch norm) left out."""
    defaults = {"ConvLayer": {"dilation": 1, "groups": 1, "bias": False, "has_shuffle": False,
                              "use_bn": True, "ops_order": "weight_bn_act", "dropout_rate": 0},
                "LinearLayer": {"bias": True, "use_bn": False, "act_func": None,
                                "ops_order": "weight_bn_act"}}
    config = copy.deepcopy(config)
    config.pop("bn")
    config["classifier"].pop("dropout_rate", None)
    for key in ("first_conv", "final_expand_layer", "feature_mix_layer", "classifier"):
        if key in config:
            config[key] = defaults[config[key]["name"]] | config[key]
    for block in config["blocks"]:
        conv = block["mobile_inverted_conv"]
        if conv.get("mid_channels", 0) is None:  # no expansion: the middle width is the input's
            conv["mid_channels"] = conv["in_channels"]
    return config


def test_a_once_for_all_subnet_is_read_into_its_preset_and_written_back(tmp_path):
    (tmp_path / "net.config").write_text(json.dumps(ofa_subnet()))
    (tmp_path / "run.config").write_text(json.dumps({"image_size": 192, "n_epochs": 150}))
    space, choices = load_arch(tmp_path / "net.config")  # its run.config is beside it
    assert space.name == "ofa-mbv3-w1.0@192" and choices == OFA_CHOICES
    written = net_config(space, choices)
    assert normalised(written) == normalised(ofa_subnet())
    assert check_buildable(written, 192) == 6
    # Once-for-All's later release names the same net otherwise
    (tmp_path / "new.config").write_text(json.dumps(ofa_subnet(new_release=True)))
    assert import_net_config(tmp_path / "new.config", resolution=192) == (space, choices)


def test_a_proxylessnas_net_is_read_into_its_preset_and_written_back(tmp_path):
    (tmp_path / "proxyless_mobile.config").write_text(json.dumps(proxyless_net()))
    space, choices = load_arch(tmp_path / "proxyless_mobile.config")  # 224, as ProxylessNAS runs it
    assert space.name == "proxyless-mobile"
    assert choices == ["k5_e3", "k3_e3", "zero", "zero", "k7_e3", "k3_e3", "k5_e3", "k5_e3",
                       "k7_e6", "k5_e3", "k5_e3", "k5_e3", "k5_e6", "k5_e3", "k5_e3", "k5_e3",
                       "k7_e6", "k7_e6", "k7_e3", "k7_e3", "k7_e6"]
    written = net_config(space, choices)
    assert normalised(written) == normalised(proxyless_net())
    assert check_buildable(written, 224) == 7


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_architecture_round_trips_through_a_net_config(name, tmp_path):
    space, rng = get_space(name), random.Random(name)
    for _ in range(5):
        choices = [rng.choice(layer.ops) for layer in space.layers()]
        written = net_config(space, choices)
        check_buildable(written, space.resolution)
        path = tmp_path / "net.config"
        path.write_text(json.dumps(written))
        read, again = import_net_config(path, resolution=space.resolution)
        assert read.name == name  # found from its widths alone
        assert net_config(read, again) == written
        # Once-for-All's format leaves skipped layers out: the same blocks, zeros at a stage's end
        assert [s for s in read.network(again) if s.kind != "zero"] == \
            [s for s in space.network(choices) if s.kind != "zero"]
        assert again == choices or space.family == "mobilenetv3"


def test_pxprof_arch_import_export_and_predict_take_a_net_config(run, tmp_path):
    (tmp_path / "net.config").write_text(json.dumps(ofa_subnet(new_release=True)))
    (tmp_path / "ofa_run.json").write_text(json.dumps({"image_size": [192]}))
    r = run("pxprof", "arch", "import", "net.config", "--run-config", "ofa_run.json", "-o", "a.json")
    assert r.returncode == 0, r.stderr
    assert "ofa-mbv3-w1.0@192" in r.stdout
    assert json.loads((tmp_path / "a.json").read_text()) == \
        {"space": "ofa-mbv3-w1.0", "resolution": 192, "choices": OFA_CHOICES}
    r = run("pxprof", "arch", "export", "a.json", "-o", "out.config", "--run-config", "run.config")
    assert r.returncode == 0, r.stderr
    assert normalised(json.loads((tmp_path / "out.config").read_text())) == \
        normalised(ofa_subnet())
    assert json.loads((tmp_path / "run.config").read_text()) == {"image_size": 192}
    synthetic_table(get_space("ofa-mbv3-w1.0", 192)).save(tmp_path / "t.csv")
    by_arch, by_config = (run("pxprof", "predict", "--table", "t.csv", "--arch", arch)
                          for arch in ("a.json", "out.config"))  # run.config beside out.config
    assert by_arch.returncode == 0 and by_arch.stdout.endswith(" ms\n"), by_arch.stderr
    assert by_config.stdout == by_arch.stdout


def _changed(config, change):
    config = copy.deepcopy(config)
    change(config)
    return json.dumps(config)


OFA = ofa_subnet()
BAD = {
    "not JSON": ("net: {blocks: []}\n", ["not a net.config", "not valid JSON"]),
    "unknown block type": (_changed(OFA, lambda c: c["blocks"][3].update(name="ResNetBottleneckBlock")),
                           ["blocks[3]", "unknown block type 'ResNetBottleneckBlock'"]),
    "unknown layer type": (_changed(OFA, lambda c: c["blocks"][2]["mobile_inverted_conv"].update(
        name="DepthConvLayer")), ["blocks[2].mobile_inverted_conv", "'DepthConvLayer'"]),
    "unknown network": (_changed(OFA, lambda c: c.update(name="ResNets")), ["'ResNets'"]),
    "a stride no preset has": (_changed(OFA, lambda c: c["blocks"][1]["mobile_inverted_conv"].update(
        stride=1)), ["fits no preset space", "blocks[1]", "at stride 2"]),
    "a width no preset has": (_changed(OFA, lambda c: c["blocks"][3]["mobile_inverted_conv"].update(
        out_channels=48)), ["fits no preset space", "blocks[3]", "24->40"]),
    "no image size": (json.dumps(OFA), ["fits ofa-mbv3-w1.0", "--run-config"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_net_config_is_refused_in_one_line_and_nothing_is_written(case, cli, tmp_path):
    text, fragments = BAD[case]
    (tmp_path / "net.config").write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert_bad_input(cli("pxprof", "arch", "import", "net.config", "-o", "a.json"), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_net_config_read_for_an_architecture_names_its_file():
    with pytest.raises(UserError, match="no such net.config"):
        load_arch("missing/net.config")


@pytest.mark.slow
def test_pxprof_check_measures_a_net_config_end_to_end(run, tmp_path, small_space, quick_device):
    # A net of a user's space, read into that space; TorchScript: a whole network exports at once.
    space = get_space(str(small_space))
    choices = [layer.ops[-1] for layer in space.layers()]
    (tmp_path / "net.config").write_text(json.dumps(net_config(space, choices)))
    synthetic_table(space).save(tmp_path / "t.csv")
    checked = run("pxprof", "check", "--device", quick_device, "--runtime", "torch", "--table",
                  "t.csv", "--space", small_space, "--arch", "net.config")
    assert checked.returncode == 0, checked.stderr
    row, summary = checked.stdout.splitlines()
    assert row.startswith(f"arch {' '.join(choices)}  measured ") and " table " in row
    assert summary.startswith("table / measured: mean")

"""Block keys round-trip with the published syntax; presets produce the published key sets."""

import json

import pytest

from profiler.errors import UserError
from profiler.space.arch import load_arch, save_arch
from profiler.space.blockspec import BlockSpec, parse_key
from profiler.space.spaces import get_space, space_from_dict

from conftest import SMALL_SPACE, assert_bad_input

PUBLISHED = [
    "Conv-input:224x224x3-output:112x112x32",
    "expanded_conv-input:112x112x32-output:112x112x16-expand:1-kernel:3-stride:1-idskip:0",
    "expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:5-stride:2-idskip:0",
    "expanded_conv-input:56x56x24-output:56x56x24-expand:6-kernel:7-stride:1-idskip:1",
    "Conv_1-input:7x7x320-output:7x7x1280",
    "Logits-input:7x7x1280-output:1000",
    # Once-for-All's MobileNetV3 tables: `expand` is the middle channel count
    "expanded_conv-input:112x112x24-output:112x112x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0",
    "expanded_conv-input:56x56x32-output:28x28x48-expand:128-kernel:5-stride:2-idskip:0-se:1-hs:0",
    "expanded_conv-input:7x7x192-output:7x7x192-expand:1152-kernel:7-stride:1-idskip:1-se:1-hs:1",
]


@pytest.mark.parametrize("key", PUBLISHED)
def test_published_keys_round_trip(key):
    assert parse_key(key).key == key


def test_parsed_fields():
    spec = parse_key(PUBLISHED[2])
    assert spec == BlockSpec("mbconv", 112, 112, 16, 24, kernel=5, stride=2, expand=3, idskip=False)
    assert (spec.out_h, spec.out_w) == (56, 56)
    stem = parse_key(PUBLISHED[0])
    assert (stem.kind, stem.kernel, stem.stride) == ("conv", 3, 2)
    assert parse_key(PUBLISHED[4]).kernel == 1


def test_the_two_expand_conventions_are_never_confused():
    ratio = parse_key("expanded_conv-input:28x28x48-output:28x28x48-expand:4-kernel:5-stride:1-idskip:1")
    mid = parse_key("expanded_conv-input:28x28x48-output:28x28x48-expand:192-kernel:5-stride:1"
                    "-idskip:1-se:1-hs:0")
    assert (ratio.kind, ratio.expand, ratio.mid, ratio.middle) == ("mbconv", 4, 0, 192)
    assert (mid.kind, mid.expand, mid.mid, mid.middle, mid.se, mid.hs) == \
        ("mbconv3", 1, 192, 192, True, False)
    with pytest.raises(UserError, match="mbconv blocks have no se"):
        BlockSpec("mbconv", 28, 28, 48, 48, kernel=5, expand=4, idskip=True, se=True)
    with pytest.raises(UserError, match="not as an expand ratio"):
        BlockSpec("mbconv3", 28, 28, 48, 48, kernel=5, expand=4, mid=192)
    with pytest.raises(UserError, match="middle channel count"):
        BlockSpec("mbconv3", 28, 28, 48, 48, kernel=5, se=True)
    # one convention written in the other's key form
    with pytest.raises(UserError, match="an expand ratio belongs in a key without se/hs"):
        parse_key("expanded_conv-input:28x28x48-output:28x28x48-expand:4-kernel:5-stride:1"
                  "-idskip:1-se:1-hs:0")
    with pytest.raises(UserError, match="a middle channel count belongs in a key with se/hs"):
        parse_key("expanded_conv-input:28x28x48-output:28x28x48-expand:192-kernel:5-stride:1-idskip:1")


@pytest.mark.parametrize("key", [
    "expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:5-stride:2",  # no idskip
    "expanded_conv-input:112x112x16-output:56x56x24-expand:3-kernel:5-stride:1-idskip:0",  # shape
    "expanded_conv-input:56x56x24-output:56x56x32-expand:3-kernel:3-stride:1-idskip:1",  # skip
    "Conv-input:224x224x3",
    "MBConv-input:1x1x1-output:1x1x1",
    # a ratio where a middle count belongs would be 4 channels: kept, but se/hs must be 0 or 1
    "expanded_conv-input:28x28x48-output:28x28x48-expand:192-kernel:5-stride:1-idskip:1-se:2-hs:0",
    "expanded_conv-input:28x28x48-output:28x28x48-expand:192-kernel:5-stride:1-idskip:1-hs:1",
])
def test_bad_keys_are_refused(key):
    with pytest.raises(UserError):
        parse_key(key)


# Feature-map sides of `proxyless-mobile` after the stem and after each stride-2 stage, by hand.
SIDES = {224: (112, 56, 28, 14, 7), 192: (96, 48, 24, 12, 6), 160: (80, 40, 20, 10, 5)}


def _mobile_keys_by_hand(r=224):
    # From the paper's description, not from the code under test.
    s0, s1, s2, s3, s4 = SIDES[r]
    keys = [f"Conv-input:{r}x{r}x3-output:{s0}x{s0}x32"]
    keys += [f"expanded_conv-input:{s0}x{s0}x32-output:{s0}x{s0}x16-expand:1-kernel:{k}-stride:1-idskip:0"
             for k in (3, 5, 7)]
    transitions = [  # input, output, stride, idskip: first layer of a stage, then its repeats
        (f"{s0}x{s0}x16", f"{s1}x{s1}x24", 2, 0), (f"{s1}x{s1}x24", f"{s1}x{s1}x24", 1, 1),
        (f"{s1}x{s1}x24", f"{s2}x{s2}x40", 2, 0), (f"{s2}x{s2}x40", f"{s2}x{s2}x40", 1, 1),
        (f"{s2}x{s2}x40", f"{s3}x{s3}x80", 2, 0), (f"{s3}x{s3}x80", f"{s3}x{s3}x80", 1, 1),
        (f"{s3}x{s3}x80", f"{s3}x{s3}x96", 1, 0), (f"{s3}x{s3}x96", f"{s3}x{s3}x96", 1, 1),
        (f"{s3}x{s3}x96", f"{s4}x{s4}x192", 2, 0), (f"{s4}x{s4}x192", f"{s4}x{s4}x192", 1, 1),
        (f"{s4}x{s4}x192", f"{s4}x{s4}x320", 1, 0),
    ]
    for inp, out, stride, skip in transitions:
        for k in (3, 5, 7):
            for e in (3, 6):
                keys.append(f"expanded_conv-input:{inp}-output:{out}-expand:{e}-kernel:{k}"
                            f"-stride:{stride}-idskip:{skip}")
    keys += [f"Conv_1-input:{s4}x{s4}x320-output:{s4}x{s4}x1280",
             f"Logits-input:{s4}x{s4}x1280-output:1000"]
    return keys


def test_proxyless_mobile_is_the_published_72_key_table():
    expected = _mobile_keys_by_hand()
    assert len(set(expected)) == 72
    got = [b.key for b in get_space("proxyless-mobile").blocks()]
    assert len(got) == 72
    assert set(got) == set(expected)


def _ofa_keys_by_hand(r=224):
    # From Once-for-All's MobileNetV3 definition at width 1.2, not from the code under test: middle
    # widths make_divisible(in x {3, 4, 6}, 8), SE in stages 2, 4, 5, h-swish in stages 3-5.
    s0, s1, s2, s3, s4 = {224: (112, 56, 28, 14, 7), 160: (80, 40, 20, 10, 5)}[r]
    keys = [f"Conv-input:{r}x{r}x3-output:{s0}x{s0}x24",
            f"expanded_conv-input:{s0}x{s0}x24-output:{s0}x{s0}x24-expand:24-kernel:3-stride:1"
            f"-idskip:1-se:0-hs:0"]
    transitions = [  # input, output, stride, idskip, middle widths, se, hs
        (f"{s0}x{s0}x24", f"{s1}x{s1}x32", 2, 0, (72, 96, 144), 0, 0),
        (f"{s1}x{s1}x32", f"{s1}x{s1}x32", 1, 1, (96, 128, 192), 0, 0),
        (f"{s1}x{s1}x32", f"{s2}x{s2}x48", 2, 0, (96, 128, 192), 1, 0),
        (f"{s2}x{s2}x48", f"{s2}x{s2}x48", 1, 1, (144, 192, 288), 1, 0),
        (f"{s2}x{s2}x48", f"{s3}x{s3}x96", 2, 0, (144, 192, 288), 0, 1),
        (f"{s3}x{s3}x96", f"{s3}x{s3}x96", 1, 1, (288, 384, 576), 0, 1),
        (f"{s3}x{s3}x96", f"{s3}x{s3}x136", 1, 0, (288, 384, 576), 1, 1),
        (f"{s3}x{s3}x136", f"{s3}x{s3}x136", 1, 1, (408, 544, 816), 1, 1),
        (f"{s3}x{s3}x136", f"{s4}x{s4}x192", 2, 0, (408, 544, 816), 1, 1),
        (f"{s4}x{s4}x192", f"{s4}x{s4}x192", 1, 1, (576, 768, 1152), 1, 1),
    ]
    for inp, out, stride, skip, mids, se, hs in transitions:
        for k in (3, 5, 7):
            for mid in mids:
                keys.append(f"expanded_conv-input:{inp}-output:{out}-expand:{mid}-kernel:{k}"
                            f"-stride:{stride}-idskip:{skip}-se:{se}-hs:{hs}")
    keys += [f"Conv_1-input:{s4}x{s4}x192-output:{s4}x{s4}x1152",
             f"AvgPool2D-input:{s4}x{s4}x1152-output:1x1x1152",
             "Conv_2-input:1x1x1152-output:1x1x1536", "Logits-input:1x1x1536-output:1000"]
    return keys


@pytest.mark.parametrize("r", [224, 160])
def test_ofa_mbv3_has_once_for_alls_keys(r):
    space = get_space("ofa-mbv3-w1.2", r)
    got = [b.key for b in space.blocks()]
    assert sorted(got) == sorted(_ofa_keys_by_hand(r)) and len(got) == 96
    assert all(parse_key(k).key == k for k in got)
    layers = space.layers()
    assert len(layers) == 20 and layers[0].ops == ["k3_e3", "k3_e4", "k3_e6", "k5_e3", "k5_e4",
                                                   "k5_e6", "k7_e3", "k7_e4", "k7_e6"]
    # elastic depth 2-4: `zero` in the third and fourth layer of every stage, nowhere else
    assert [i % 4 for i, layer in enumerate(layers) if "zero" in layer.candidates] == [2, 3] * 5
    with pytest.raises(UserError, match="not a candidate"):
        space.network(["k3_e3", "zero"] + ["k3_e3"] * 18)


def test_proxyless_mobile_at_width_1_4_has_the_published_14_widths():
    # proxyless_mobile_14: stem 48, first block 24, stages 32 56 112 136 272 448, feature mix 1792.
    blocks = get_space("proxyless-mobile-w1.4").blocks()
    assert blocks[0].key == "Conv-input:224x224x3-output:112x112x48"
    assert blocks[1].key == ("expanded_conv-input:112x112x48-output:112x112x24-expand:1-kernel:3"
                             "-stride:1-idskip:0")
    widths = sorted({b.out_c for b in blocks if b.kind == "mbconv"} - {24})
    assert [24] + widths == [24, 32, 56, 112, 136, 272, 448]
    assert blocks[-2].key == "Conv_1-input:7x7x448-output:7x7x1792"


def test_other_resolutions_on_the_command_line_and_in_architecture_files(run, tmp_path):
    for r in (160, 192):
        proc = run("pxprof", "blocks", "--space", "proxyless-mobile", "--resolution", str(r))
        assert proc.returncode == 0, proc.stderr
        assert sorted(proc.stdout.split()) == sorted(_mobile_keys_by_hand(r))
        assert get_space(f"proxyless-mobile@{r}").name == f"proxyless-mobile@{r}"
    assert get_space("proxyless-mobile", 224) == get_space("proxyless-mobile")
    choices = ["k3_e3"] * 21
    save_arch(tmp_path / "a.json", "proxyless-mobile@160", choices)
    assert json.loads((tmp_path / "a.json").read_text())["resolution"] == 160
    space, _ = load_arch(tmp_path / "a.json")
    assert space.resolution == 160 and space.input_shape(2) == (2, 3, 160, 160)
    assert_bad_input(run("pxprof", "blocks", "--space", "proxyless-mobile", "--resolution", "16"),
                     "cannot take resolution 16", "total stride is 32")


def test_zero_only_where_stride_1_and_same_width():
    space = get_space("proxyless-mobile")
    layers = space.layers()
    assert len(layers) == 21
    for layer in layers:
        first = layer.candidates["k3_e3"]
        allowed = first.stride == 1 and first.in_c == first.out_c
        assert ("zero" in layer.candidates) == allowed
    assert sum("zero" in layer.candidates for layer in layers) == 15


def test_tiny_space_shape():
    tiny = get_space("tiny")
    assert tiny.resolution == 32 and len(tiny.layers()) == 8
    assert tiny.ops == ["k3_e3", "k3_e6", "k5_e3", "k5_e6", "k7_e3", "k7_e6", "zero"]


def test_network_specs_and_choice_checks():
    space = space_from_dict(SMALL_SPACE, "test")
    choices = ["k5_e3", "zero", "k3_e3"]
    specs = space.network(choices)
    assert [s.kind for s in specs] == ["conv", "mbconv", "mbconv", "zero", "mbconv", "conv", "linear"]
    with pytest.raises(UserError, match="3 searchable layers"):
        space.network(["k3_e3"])
    with pytest.raises(UserError, match="not a candidate"):
        space.network(["k3_e3", "k3_e3", "zero"])  # layer 2 has stride 2: no zero


def test_user_space_files(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SMALL_SPACE))
    assert get_space(str(path)).name == "small"
    for bad, fragment in [({**SMALL_SPACE, "colour": 1}, "unknown field"),
                          ({k: v for k, v in SMALL_SPACE.items() if k != "stages"}, "missing"),
                          ({**SMALL_SPACE, "stages": [{"width": 8}]}, r"stages\[0\]: missing field"),
                          ({**SMALL_SPACE, "resolution": -4}, "resolution: must be at least 1"),
                          ({**SMALL_SPACE, "name": "tiny"}, "taken by a preset"),
                          ({**SMALL_SPACE, "stages": [{"width": 8, "repeats": 1, "stride": 1,
                                                       "se": True}]}, "need family mobilenetv3"),
                          ({**SMALL_SPACE, "family": "mobilenetv3"}, "final_width")]:
        path.write_text(json.dumps(bad))
        with pytest.raises(UserError, match=fragment):
            get_space(str(path))


def test_cli_blocks_and_space_errors(run, tmp_path):
    proc = run("pxprof", "blocks", "--space", "proxyless-mobile")
    assert proc.returncode == 0
    assert proc.stdout.split() == [b.key for b in get_space("proxyless-mobile").blocks()]
    assert_bad_input(run("pxprof", "blocks", "--space", "nope"), "unknown space", "proxyless-mobile", "tiny")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    assert_bad_input(run("pxprof", "blocks", "--space", "broken.yaml"), "not valid YAML")

"""Block modules match their specs; a whole network exports to one ONNX file that runs the same."""

import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from profiler.build.blocks import build_block, build_network, input_shape
from profiler.build.export import export
from profiler.space.blockspec import BlockSpec
from profiler.space.spaces import get_space
from profiler.tables.table import LatencyTable


@pytest.mark.parametrize("space_name", ["tiny", "proxyless-mobile", "ofa-mbv3-w1.2"])
def test_every_block_has_its_spec_shape(space_name):
    for spec in get_space(space_name).blocks():
        with torch.no_grad():
            y = build_block(spec).eval()(torch.randn(*input_shape(spec)))
        expected = (1, spec.out_c) if spec.kind == "linear" else (1, spec.out_c, spec.out_h, spec.out_w)
        assert tuple(y.shape) == expected, spec.key


def test_mbconv_structure():
    spec = get_space("tiny").layers()[1].candidates["k5_e6"]
    block = build_block(spec)
    convs = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.kernel_size, c.groups) for c in convs] == [((1, 1), 1), ((5, 5), 16 * 6), ((1, 1), 1)]
    assert spec.idskip and block.idskip
    first = build_block(get_space("tiny").fixed()[1])  # expand 1: no expansion conv
    assert len([m for m in first.modules() if isinstance(m, torch.nn.Conv2d)]) == 2


@pytest.mark.slow
def test_network_exports_to_one_onnx_file(tmp_path):
    space = get_space("tiny")
    choices = ["k3_e3", "zero", "k7_e6", "k5_e3", "zero", "k3_e6", "k7_e3", "zero"]
    net = build_network(space, choices).eval()
    path = export(net, (1, 3, 32, 32), "onnx", tmp_path / "net.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.onnx"]  # no external data files
    x = np.random.default_rng(0).random((1, 3, 32, 32), dtype=np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_shipped_tables_cover_their_spaces():
    from pathlib import Path
    root = Path(__file__).resolve().parents[1] / "data" / "latency_tables"
    for name in ("tiny", "proxyless-mobile"):
        table = LatencyTable.load(root / f"cpu-{name}.csv")
        assert table.space == name and table.fingerprint["device"] == "cpu"
        assert table.missing(get_space(name).blocks()) == []
        assert (root / f"cpu-{name}.samples.json").exists()


SE_HS = [BlockSpec("mbconv3", 14, 14, 48, 48, kernel=5, mid=192, idskip=True, se=True, hs=False),
         BlockSpec("mbconv3", 14, 14, 48, 96, kernel=3, stride=2, mid=144, se=False, hs=True),
         BlockSpec("mbconv3", 7, 7, 96, 96, kernel=7, mid=576, idskip=True, se=True, hs=True)]


@pytest.mark.slow
@pytest.mark.parametrize("spec", SE_HS, ids=lambda s: s.key)
def test_squeeze_excite_and_hswish_blocks_export_and_run_as_in_torch(spec, tmp_path):
    torch.manual_seed(0)
    block = build_block(spec).eval()
    for m in block.modules():  # batch-norm statistics that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = np.random.default_rng(0).standard_normal(input_shape(spec), dtype=np.float32)
    with torch.no_grad():
        expected = block(torch.from_numpy(x)).numpy()
    assert expected.shape == (1, spec.out_c, spec.out_h, spec.out_w)
    sess = ort.InferenceSession(str(export(block, input_shape(spec), "onnx", tmp_path / "b.onnx")),
                                providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {sess.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)
    ops = {node.op_type for node in onnx.load(str(tmp_path / "b.onnx")).graph.node}
    assert ("HardSwish" in ops) == spec.hs and ("HardSigmoid" in ops) == spec.se, ops
    if importlib.util.find_spec("litert_torch") is None:
        return
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(export(block, input_shape(spec), "tflite",
                                                    tmp_path / "b.tflite")))
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    channels_last = list(inp["shape"]) != list(x.shape)
    interpreter.set_tensor(inp["index"], x.transpose(0, 2, 3, 1) if channels_last else x)
    interpreter.invoke()
    y = interpreter.get_tensor(out["index"])
    np.testing.assert_allclose(y.transpose(0, 3, 1, 2) if channels_last else y, expected,
                               rtol=1e-3, atol=1e-3)

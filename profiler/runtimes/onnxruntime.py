"""onnxruntime: ONNX files, NCHW, timed by the device script."""

from __future__ import annotations

from . import Runtime


def export_onnx(module, x, path) -> None:
    import torch
    # One file (no external data) so a single push carries the whole model.
    torch.onnx.export(module, (x,), str(path), dynamo=True, external_data=False, optimize=True,
                      verbose=False)


RUNTIME = Runtime(name="onnxruntime", format="onnx", suffix=".onnx", channels_last=False,
                  package="onnxruntime", export=export_onnx)

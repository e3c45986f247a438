"""onnxruntime: ONNX files, NCHW, timed by the device script."""

from __future__ import annotations

from .base import Runtime


RUNTIME = Runtime(name="onnxruntime", format="onnx", channels_last=False,
                  package="onnxruntime")

"""The runtimes registry: what a device runtime loads and how models are made for it.

A runtime is one module here holding a `RUNTIME` entry: its name (as device profiles write it), the
model format and file suffix, the input layout its files take, how a torch module is exported to
that format, the package a device needs for it, and how the host drives it (the device script,
with one adapter per runtime, or a tool of its own such as TFLite's benchmark_model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import UserError


@dataclass(frozen=True)
class Runtime:
    name: str
    format: str                 # model format: onnx, tflite, torchscript
    suffix: str                 # file suffix of that format
    channels_last: bool         # model files take NHWC input (TFLite as on a phone) or NCHW
    package: str                # what to install on a device that lacks the runtime
    export: Callable            # export(module, x, path): write a torch module evaluated on x
    # How the host times models: None for the device script (device_scripts/pxbench.py, with one
    # adapter per runtime), or a client class of the runtime's own, built like PxbenchClient.
    client: Callable | None = None

    def input_shape(self, nchw) -> list[int]:
        """The input shape this runtime's model files take, from an NCHW shape."""
        n, c, h, w = nchw
        return [n, h, w, c] if self.channels_last else [n, c, h, w]


def _registry() -> dict[str, Runtime]:
    from . import benchmark_model, onnxruntime, tflite, torchscript
    return {m.RUNTIME.name: m.RUNTIME for m in (onnxruntime, tflite, torchscript, benchmark_model)}


RUNTIMES = _registry()


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise UserError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]


def formats() -> dict[str, Runtime]:
    """One runtime per model format: how a file of that format is exported."""
    found = {}
    for rt in RUNTIMES.values():
        found.setdefault(rt.format, rt)
    return found

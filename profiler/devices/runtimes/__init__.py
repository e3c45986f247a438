"""The runtimes registry: what a device runtime loads and how models are made for it.

A runtime is one module here holding a `RUNTIME` entry: its name (as device profiles write it), the
model format it loads (written by profiler/build/export.py), the input layout its files take, the
package a device needs for it, and how the host drives it (the device script,
with one adapter per runtime, or a tool of its own such as TFLite's benchmark_model).
"""

from __future__ import annotations

from profiler.errors import UserError

from .base import Runtime


def _registry() -> dict[str, Runtime]:
    from . import benchmark_model, onnxruntime, tflite, torchscript
    return {m.RUNTIME.name: m.RUNTIME for m in (onnxruntime, tflite, torchscript, benchmark_model)}


RUNTIMES = _registry()


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise UserError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]

"""The Runtime record every runtime module fills in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from profiler.build.export import suffix


@dataclass(frozen=True)
class Runtime:
    name: str
    format: str                 # model format (profiler/build/export.py): onnx, tflite, torchscript
    channels_last: bool         # model files take NHWC input (TFLite as on a phone) or NCHW
    package: str                # what to install on a device that lacks the runtime
    # How the host times models: None for the device script (device_scripts/pxbench.py, with one
    # adapter per runtime), or a client class of the runtime's own, built like PxbenchClient.
    client: Callable | None = None

    @property
    def suffix(self) -> str:
        """File suffix of the runtime's model format."""
        return suffix(self.format)

    def input_shape(self, nchw) -> list[int]:
        """The input shape this runtime's model files take, from an NCHW shape."""
        n, c, h, w = nchw
        return [n, h, w, c] if self.channels_last else [n, c, h, w]

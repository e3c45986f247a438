"""torch: TorchScript files, NCHW, timed by the device script (CUDA with events)."""

from __future__ import annotations

from .base import Runtime


RUNTIME = Runtime(name="torch", format="torchscript", channels_last=False,
                  package="torch")

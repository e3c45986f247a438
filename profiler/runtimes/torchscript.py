"""torch: TorchScript files, NCHW, timed by the device script (CUDA with events)."""

from __future__ import annotations

from . import Runtime


def export_torchscript(module, x, path) -> None:
    import torch
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(module, x), str(path))


RUNTIME = Runtime(name="torch", format="torchscript", suffix=".pt", channels_last=False,
                  package="torch", export=export_torchscript)

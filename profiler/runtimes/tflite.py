"""tflite: LiteRT (or the older tflite_runtime) on TFLite files, channel-last, timed by the device
script."""

from __future__ import annotations

import os

from ..errors import UserError
from . import Runtime


def export_tflite(module, x, path) -> None:
    import torch
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the converter's C++ logging
    try:
        import litert_torch
    except ImportError:
        raise UserError("TFLite export needs the optional extra: pip install 'pxnas[tflite]'") from None
    # Channel-last I/O as on a phone; without it the graph keeps NCHW with TRANSPOSE ops.
    # (A classifier's output has no channels to move.)
    with torch.no_grad():
        outputs = [0] if module(x).dim() >= 3 else []
    wrapped = litert_torch.to_channel_last_io(module, args=[0], outputs=outputs)
    litert_torch.convert(wrapped, (x.permute(0, 2, 3, 1).contiguous(),)).export(str(path))


RUNTIME = Runtime(name="tflite", format="tflite", suffix=".tflite", channels_last=True,
                  package="ai-edge-litert (or tflite-runtime)", export=export_tflite)

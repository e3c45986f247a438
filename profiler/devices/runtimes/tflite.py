"""tflite: LiteRT (or the older tflite_runtime) on TFLite files, channel-last, timed by the device
script."""

from __future__ import annotations

from .base import Runtime


RUNTIME = Runtime(name="tflite", format="tflite", channels_last=True,
                  package="ai-edge-litert (or tflite-runtime)")

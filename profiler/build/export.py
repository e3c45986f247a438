"""Export torch modules to the files device runtimes load: ONNX, TFLite, TorchScript (FORMATS: one
writer and file suffix per model format; a device runtime names the format it loads).

Exports of single blocks are cached by key (weights do not change latency), so re-measuring or
resuming a table does not export again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from profiler import __version__
from profiler.errors import ToolError, UserError
from profiler.files import atomic_path, remove_orphans
from profiler.outputs import writing
from profiler.space.blockspec import BlockSpec


@contextlib.contextmanager
def _quiet():
    # The exporters print progress and deprecation chatter on every call; pxprof shows its own.
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def export_onnx(module, x, path) -> None:
    import torch
    # One file (no external data) so a single push carries the whole model.
    torch.onnx.export(module, (x,), str(path), dynamo=True, external_data=False, optimize=True,
                      verbose=False)


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


def export_torchscript(module, x, path) -> None:
    import torch
    # Without the tracer's self-check (a second trace compared with the first, three quarters of
    # the export's time): a block or network here has no data-dependent control flow to miss.
    with torch.no_grad():
        torch.jit.save(torch.jit.trace(module, x, check_trace=False), str(path))


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str                 # file suffix of the format
    write: Callable             # write(module, x, path): a torch module evaluated on x


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", ".onnx", export_onnx),
    Format("tflite", ".tflite", export_tflite),
    Format("torchscript", ".pt", export_torchscript),
)}


def suffix(fmt: str) -> str:
    return _format(fmt).suffix


def _format(fmt: str) -> Format:
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
    return FORMATS[fmt]


def export(module, shape: tuple[int, ...], fmt: str, path: Path) -> Path:
    """Write torch `module` (evaluated on a float input of `shape`, NCHW) as `fmt` to `path`,
    atomically."""
    import torch  # here, not at the top: measuring from a warm export cache never needs torch

    writer = _format(fmt).write
    module = module.eval()
    x = torch.randn(*shape)
    with atomic_path(path) as tmp, _quiet():
        writer(module, x, tmp)
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("PXNAS_CACHE") or Path.home() / ".cache" / "pxnas")


def block_file(spec: BlockSpec, runtime, batch: int = 1) -> Path:
    """The exported model of one block for `runtime` (a device runtime: its model format), from
    the cache or exported now."""
    from importlib.metadata import version  # not at the top: a runtime's suffix needs none of it

    fmt = runtime.format
    # The whole spec, not only its key: a key does not say a conv's activation (profiler/space/kinds/conv.py).
    tag = f"{spec!r}|batch={batch}|torch={version('torch')}|pxnas={__version__}"
    name = hashlib.sha1(tag.encode()).hexdigest()[:20] + suffix(fmt)
    path = cache_dir() / "blocks" / fmt / name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Commands sharing a cache export a block once: one exports, the others wait for its file.
    with writing(path, "pxprof export", wait=True):
        if not path.exists():
            _export_block(spec, batch, fmt, path)
    return path


def _export_block(spec: BlockSpec, batch: int, fmt: str, path: Path) -> None:
    remove_orphans(path.parent)
    import torch

    from .blocks import build_block, input_shape

    torch.manual_seed(0)
    try:
        export(build_block(spec), input_shape(spec, batch), fmt, path)
    except UserError:
        raise
    except Exception as exc:
        raise ToolError(f"exporting {spec.key} to {fmt} failed: {type(exc).__name__}: "
                        f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}") from exc

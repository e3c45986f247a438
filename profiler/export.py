"""Export torch modules to the files device runtimes load: ONNX, TFLite, TorchScript.

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
from importlib.metadata import version
from pathlib import Path

from . import __version__
from .blockspec import BlockSpec
from .errors import ToolError, UserError
from .files import atomic_path, remove_orphans
from .runtimes import Runtime, formats


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


def suffix(fmt: str) -> str:
    return _format(fmt).suffix


def _format(fmt: str) -> Runtime:
    known = formats()
    if fmt not in known:
        raise UserError(f"unknown export format {fmt!r}; known: {', '.join(known)}")
    return known[fmt]


def export(module, shape: tuple[int, ...], fmt: str, path: Path) -> Path:
    """Write torch `module` (evaluated on a float input of `shape`, NCHW) as `fmt` to `path`,
    atomically."""
    import torch  # here, not at the top: measuring from a warm export cache never needs torch

    writer = _format(fmt).export
    module = module.eval()
    x = torch.randn(*shape)
    with atomic_path(path) as tmp, _quiet():
        writer(module, x, tmp)
    return path


def cache_dir() -> Path:
    return Path(os.environ.get("PXNAS_CACHE") or Path.home() / ".cache" / "pxnas")


def block_file(spec: BlockSpec, runtime: Runtime, batch: int = 1) -> Path:
    """The exported model of one block for `runtime`, from the cache or exported now."""
    fmt = runtime.format
    # The whole spec, not only its key: a key does not say a conv's activation (profiler/kinds/conv.py).
    tag = f"{spec!r}|batch={batch}|torch={version('torch')}|pxnas={__version__}"
    name = hashlib.sha1(tag.encode()).hexdigest()[:20] + runtime.suffix
    path = cache_dir() / "blocks" / fmt / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
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
    return path

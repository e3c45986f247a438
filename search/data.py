"""Datasets for the search, never downloaded: scikit-learn's digits (embedded), a local CIFAR-10
directory in its python format, a directory of IDX files as MNIST, Fashion-MNIST, KMNIST and EMNIST
ship them (gzipped or not), or an ImageFolder directory (class folders of images or .npy arrays).

Images are kept at their stored size (uint8 or float) and resized per batch to the space's resolution,
so CIFAR-10 at 224 px does not need 30 GB of memory. Every image has 3 channels, scaled to [0, 1] and
normalised by the training split's mean and std per channel.
"""

from __future__ import annotations

import gzip
import math
import pickle
import zlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from profiler.errors import UserError
from profiler.limits import MAX_IDX_BYTES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")
CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
# MNIST's file names; each may be gzipped (NAME.gz), as the datasets are distributed.
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass
class Split:
    images: torch.Tensor   # N x 3 x H x W, values in [0, 1] (uint8 holds 0..255)
    labels: torch.Tensor   # N, int64

    def __len__(self) -> int:
        return len(self.labels)


class Dataset:
    """train / val / test splits of one dataset, with the batching the trainer uses."""

    def __init__(self, name: str, train: Split, val: Split, test: Split, classes: int,
                 resolution: int):
        self.name, self.train, self.val, self.test = name, train, val, test
        self.classes, self.resolution = classes, resolution
        x = _as_float(train.images[:4096])
        self.mean = x.mean(dim=(0, 2, 3)).view(1, 3, 1, 1)
        self.std = x.std(dim=(0, 2, 3)).clamp_min(1e-3).view(1, 3, 1, 1)

    def batch(self, split: Split, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = _as_float(split.images[idx])
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear",
                              align_corners=False)
        return (x - self.mean) / self.std, split.labels[idx]

    def batches(self, split: Split, batch_size: int, seed: int | None = None, part=None):
        """Mini-batches in a permutation drawn from `seed` (None: in order, the whole split).
        `part(indices)` keeps one process's part of every batch (search/distributed.py); a batch
        of which it keeps nothing is skipped."""
        n = len(split)
        order = (torch.randperm(n, generator=torch.Generator().manual_seed(seed))
                 if seed is not None else torch.arange(n))
        for at in range(0, n, batch_size):
            idx = order[at:at + batch_size]
            if part is not None:
                idx = part(idx)
            if len(idx):
                yield self.batch(split, idx)

    def subset(self, n: int, seed: int) -> "Dataset":
        """The same dataset with `n` images of its training and validation splits together (drawn
        at random from `seed`, in their proportion); the test split stays whole."""
        held = len(self.train) + len(self.val)
        if not 2 <= n <= held:
            raise UserError(f"a training subset of {n} images: {self.name} has {held} training "
                            f"images (training and validation splits); give 2 .. {held}")
        n_val = max(1, round(n * len(self.val) / held))
        g = torch.Generator().manual_seed(seed)

        def some(split: Split, k: int) -> Split:
            idx = torch.randperm(len(split), generator=g)[:k]
            return Split(split.images[idx], split.labels[idx])

        return Dataset(f"{self.name}, subset", some(self.train, n - n_val), some(self.val, n_val),
                       self.test, self.classes, self.resolution)

    def describe(self) -> str:
        return (f"{self.name}: {len(self.train)} train, {len(self.val)} val, {len(self.test)} test, "
                f"{self.classes} classes")


def _as_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _three_channels(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous()
    raise UserError(f"images have {x.shape[1]} channels; pxsearch reads grey (1) or colour (3)")


def _split(images: torch.Tensor, labels: torch.Tensor, seed: int, fractions=(0.6, 0.2)):
    """A random (not stratified) split into train / val / test, reproducible from `seed`."""
    n = len(labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    a = int(round(n * fractions[0]))
    b = a + int(round(n * fractions[1]))
    if a < 1 or b - a < 1 or n - b < 1:
        raise UserError(f"a dataset of {n} images is too small to split into train, val and test")
    return [Split(images[order[s]], labels[order[s]]) for s in (slice(0, a), slice(a, b), slice(b, n))]


def digits(resolution: int, seed: int) -> Dataset:
    from sklearn.datasets import load_digits
    d = load_digits()
    images = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    images = _three_channels(images)
    labels = torch.tensor(d.target, dtype=torch.int64)
    return Dataset("digits", *_split(images, labels, seed), classes=10, resolution=resolution)


class _ArraysOnly(pickle.Unpickler):
    """CIFAR-10's own format is a pickle; this unpickler builds dicts, lists, bytes and numpy arrays
    and refuses every other global, so a crafted file cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype")} | {
        (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _ArraysOnly(f, encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except Exception as exc:
        raise UserError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__})") from None
    return data, labels


def cifar10(path: Path, resolution: int, seed: int) -> Dataset:
    parts = [_cifar_batch(path / name) for name in CIFAR_TRAIN]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    test_x, test_y = _cifar_batch(path / "test_batch")
    n = len(labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = n // 10
    val, train = order[:n_val], order[n_val:]
    return Dataset(f"cifar10 ({path.name})", Split(images[train], labels[train]),
                   Split(images[val], labels[val]),
                   Split(torch.from_numpy(test_x), torch.from_numpy(test_y)), 10, resolution)


def _idx_file(path: Path, ndim: int) -> np.ndarray:
    """One IDX file of unsigned bytes (magic 0x00000801 labels, 0x00000803 images), checked: its
    magic number, its dimensions and that it holds exactly their product of bytes."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            head = f.read(4 + 4 * ndim)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] != 0x08 or head[3] != ndim:
                raise UserError(f"{path}: not an IDX file of {ndim}-d unsigned bytes (magic "
                                f"{head[:4].hex() or 'missing'}, expected 0000080{ndim})")
            if len(head) < 4 + 4 * ndim:
                raise UserError(f"{path}: truncated IDX header")
            dims = tuple(int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
            size = math.prod(dims)  # Python's integers: no overflow
            if size > MAX_IDX_BYTES:
                raise UserError(f"{path}: declares {dims}, over {MAX_IDX_BYTES >> 30} GiB")
            body = f.read(size + 1)  # one byte more than declared: trailing data is an error too
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None
    if len(body) != size:
        raise UserError(f"{path}: declares {' x '.join(map(str, dims))} but holds "
                        f"{'fewer' if len(body) < size else 'more'} bytes (truncated or damaged)")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _idx_path(path: Path, name: str) -> Path | None:
    for p in (path / name, path / f"{name}.gz"):
        if p.is_file():
            return p
    return None


def _idx_pair(path: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    files = []
    for name in IDX_FILES[part]:
        found = _idx_path(path, name)
        if found is None:
            raise UserError(f"{path}: an IDX dataset needs {name} (or {name}.gz); it is missing")
        files.append(found)
    images, labels = _idx_file(files[0], 3), _idx_file(files[1], 1)
    if len(images) != len(labels):
        raise UserError(f"{files[0]} holds {len(images)} images but {files[1]} {len(labels)} labels")
    if len(images) == 0:
        raise UserError(f"{files[0]} holds no images")
    return images, labels


def is_idx(path: Path) -> bool:
    return any(_idx_path(path, name) for names in IDX_FILES.values() for name in names)


def idx_dataset(path: Path, resolution: int, seed: int) -> Dataset:
    """MNIST's format: the training file is split into weight training and validation (a tenth,
    at random from `seed`); the t10k files are the test split."""
    train_x, train_y = _idx_pair(path, "train")
    test_x, test_y = _idx_pair(path, "test")
    classes = int(train_y.max()) + 1
    if int(test_y.max()) >= classes:
        raise UserError(f"{path}: a test label {int(test_y.max())} is outside the training "
                        f"labels 0 .. {classes - 1}")
    images = torch.from_numpy(train_x.copy()).unsqueeze(1)  # N x 1 x H x W, uint8
    labels = torch.from_numpy(train_y.astype(np.int64))
    n = len(labels)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = n // 10
    if n_val < 1:
        raise UserError(f"{path}: {n} training images are too few to hold a tenth out for "
                        f"validation")
    val, train = order[:n_val], order[n_val:]
    test = Split(_three_channels(torch.from_numpy(test_x.copy()).unsqueeze(1)),
                 torch.from_numpy(test_y.astype(np.int64)))
    return Dataset(f"idx ({path.name})", Split(_three_channels(images[train]), labels[train]),
                   Split(_three_channels(images[val]), labels[val]), test, classes, resolution)


def _read_image(path: Path, resolution: int) -> np.ndarray:
    from PIL import Image

    if path.suffix.lower() == ".npy":
        try:
            # Mapped, not read: a header may declare any shape, and the file must hold it.
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a readable .npy array ({exc})") from None
        # Pillow's bound against decompression bombs, for arrays too: one bound on an image.
        if a.size > 3 * Image.MAX_IMAGE_PIXELS:
            raise UserError(f"{path}: an array of {a.size} values is no image (at most "
                            f"{Image.MAX_IMAGE_PIXELS} pixels of 3 channels)")
        a = np.array(a)  # read, now that its size is known
        if a.ndim == 2:
            a = a[None]
        elif a.ndim == 3 and a.shape[-1] in (1, 3) and a.shape[0] not in (1, 3):
            a = a.transpose(2, 0, 1)  # H x W x C
        if a.ndim != 3 or a.shape[0] not in (1, 3):
            raise UserError(f"{path}: an image array is H x W, C x H x W or H x W x C with 1 or 3 "
                            f"channels; got shape {a.shape}")
        x = torch.from_numpy(np.ascontiguousarray(a)).float()[None]
        if a.dtype == np.uint8:
            x = x / 255.0
        x = _three_channels(x)
        return F.interpolate(x, size=(resolution, resolution), mode="bilinear",
                             align_corners=False)[0].clamp(0, 1).mul(255).round().byte().numpy()
    try:
        with warnings.catch_warnings():
            # Pillow warns between its bound and twice it, and refuses beyond: refused alike.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = im.convert("RGB").resize((resolution, resolution), Image.BILINEAR)
                return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)
    except (OSError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UserError(f"{path}: not a readable image ({exc})") from None


def image_folder(path: Path, resolution: int, seed: int) -> Dataset:
    classes = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    images, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted((path / name).iterdir()):
            if f.suffix.lower() in IMAGE_SUFFIXES + (".npy",):
                images.append(_read_image(f, resolution))
                labels.append(label)
    if len(set(labels)) < 2:
        raise UserError(f"{path} is not a dataset: expected CIFAR-10 python batches (data_batch_1..5, "
                        f"test_batch), MNIST-format IDX files (train-images-idx3-ubyte, "
                        f"train-labels-idx1-ubyte, t10k-..., gzipped or not) or an ImageFolder (one "
                        f"sub-folder of images per class, at least two classes)")
    x = torch.from_numpy(np.stack(images))
    y = torch.tensor(labels, dtype=torch.int64)
    return Dataset(f"images ({path.name})", *_split(x, y, seed), classes=len(classes),
                   resolution=resolution)


def load_data(spec: str, resolution: int, seed: int = 0, subset: int | None = None) -> Dataset:
    """`digits`, a CIFAR-10 python directory, an IDX (MNIST-format) directory, or an ImageFolder
    directory; `subset`: keep that many training images (Dataset.subset)."""
    data = _load(spec, resolution, seed)
    return data.subset(subset, seed) if subset is not None else data


def _load(spec: str, resolution: int, seed: int) -> Dataset:
    if spec == "digits":
        return digits(resolution, seed)
    path = Path(spec)
    if not path.exists():
        raise UserError(f"no such dataset: {spec} (use 'digits', a CIFAR-10 python directory, an "
                        f"IDX directory or an ImageFolder directory)")
    if not path.is_dir():
        raise UserError(f"{spec} is not a dataset: a dataset is 'digits' or a directory "
                        f"(CIFAR-10 python batches, MNIST-format IDX files, or an ImageFolder)")
    if all((path / n).is_file() for n in CIFAR_TRAIN + ["test_batch"]):
        return cifar10(path, resolution, seed)
    if is_idx(path):
        return idx_dataset(path, resolution, seed)
    return image_folder(path, resolution, seed)

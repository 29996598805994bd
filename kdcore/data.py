"""Datasets by name, as in-memory tensors with deterministic splits.

`load_dataset(name, seed)` returns a `Dataset`: float32 inputs shaped
(N, *input_shape), int64 labels, for train / validation / test, plus metadata
(class names, input shape, whether the inputs are images). Everything fits in
memory, so training indexes tensors directly instead of running a per-batch
Python data pipeline.

- digits: scikit-learn's 8x8 handwritten digits (1 797 images), embedded, the default.
- moons, spirals: 2-D points, generated, for decision-boundary plots.
- mnist, fashion_mnist: 28x28 images read by torchvision from a data root
  (`<root>/MNIST/raw/*.gz`, `<root>/FashionMNIST/raw/*.gz`); downloaded when
  online, and when offline and missing a `DatasetUnavailable` says where to put them.
- user-<fingerprint>: a dataset a user uploaded (`kdcore.userdata`), stored under the cache folder.

Loaded datasets are memoised per (name, seed, data_root): loading MNIST twice
costs nothing. A Dataset is shared and must be treated as read-only.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


def _is_network_error(err: BaseException) -> bool:
    """Whether a download failed for want of a network (as torchvision words it, or a URLError)."""
    import socket
    import urllib.error
    text = str(err)
    # not any OSError: a read-only folder or a corrupt .gz is no network problem
    return isinstance(err, (urllib.error.URLError, ConnectionError, socket.gaierror, TimeoutError)) \
        or "urlopen" in text or "Error downloading" in text


class DatasetUnavailable(RuntimeError):
    """A dataset cannot be loaded here (missing files and no network, a bad name...).

    The message is written for the person using the app: it says what is
    missing and what to do about it.
    """

    detail: str = ""   # the underlying library's own message, for a 'technical detail' box


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_val: torch.Tensor
    y_val: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    is_image: bool
    seed: int
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_dim(self) -> int:
        return int(math.prod(self.input_shape))

    def split(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, y) of 'train', 'val' or 'test'."""
        if which not in ("train", "val", "test"):
            raise ValueError(f"unknown split {which!r}; expected 'train', 'val' or 'test'")
        return getattr(self, f"X_{which}"), getattr(self, f"y_{which}")

    def summary(self) -> str:
        return (f"{self.extra.get('label', self.name)}: {len(self.y_train)} train / {len(self.y_val)} val / "
                f"{len(self.y_test)} test, {self.n_classes} classes, input {self.input_shape}")


def default_data_root() -> Path:
    """Where downloaded datasets live: $KDLAB_DATA, else ~/.cache/distillation-lab/data."""
    env = os.environ.get("KDLAB_DATA")
    return Path(env) if env else Path.home() / ".cache" / "distillation-lab" / "data"


def _stratified_split(y: np.ndarray, fractions: tuple[float, float], seed: int):
    """Indices of train/val/test with each class split in the same proportions."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = int(round(len(idx) * fractions[0]))
        n_test = int(round(len(idx) * fractions[1]))
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val:n_val + n_test])
        parts[0].append(idx[n_val + n_test:])
    # a fixed order inside each split (shuffled once, seeded) so batches mix classes
    return [rng.permutation(np.concatenate(p)) for p in parts]


def _from_arrays(name, X, y, class_names, input_shape, is_image, seed, description,
                 fractions=(0.2, 0.2)) -> Dataset:
    tr, va, te = _stratified_split(y, fractions, seed)
    X = torch.as_tensor(X, dtype=torch.float32).reshape(len(X), *input_shape)
    y = torch.as_tensor(y, dtype=torch.int64)
    return Dataset(name, X[tr], y[tr], X[va], y[va], X[te], y[te],
                   tuple(class_names), tuple(input_shape), is_image, seed, description)


def _digits(seed: int, data_root: Path | None) -> Dataset:
    from sklearn.datasets import load_digits
    d = load_digits()
    X = d.data.astype(np.float32) / 16.0  # pixel intensities 0..16 -> 0..1
    return _from_arrays("digits", X, d.target, [str(i) for i in range(10)], (1, 8, 8), True, seed,
                        "scikit-learn's 8×8 handwritten digits (1 797 images, 10 classes)")


def _moons(seed: int, data_root: Path | None) -> Dataset:
    from sklearn.datasets import make_moons
    # the data itself is fixed (seed 0); the seed only changes the split
    X, y = make_moons(n_samples=1500, noise=0.25, random_state=0)
    return _from_arrays("moons", X.astype(np.float32), y, ["upper moon", "lower moon"], (2,), False,
                        seed, "two interleaved half-circles with noise (1 500 points)")


def _spirals(seed: int, data_root: Path | None, n_arms: int = 3, n_per_arm: int = 500) -> Dataset:
    rng = np.random.default_rng(0)
    xs, ys = [], []
    for k in range(n_arms):
        r = np.linspace(0.05, 1.0, n_per_arm)
        theta = r * 3.0 * np.pi + 2 * np.pi * k / n_arms + rng.normal(0, 0.15, n_per_arm)
        xs.append(np.stack([r * np.cos(theta), r * np.sin(theta)], 1))
        ys.append(np.full(n_per_arm, k))
    X = np.concatenate(xs).astype(np.float32)
    return _from_arrays("spirals", X, np.concatenate(ys), [f"arm {k}" for k in range(n_arms)], (2,),
                        False, seed, f"{n_arms} interleaved spiral arms ({n_arms * n_per_arm} points)")


_TORCHVISION = {
    "mnist": ("MNIST", [str(i) for i in range(10)], "MNIST handwritten digits (70 000 images, 28×28)"),
    "fashion_mnist": ("FashionMNIST",
                      ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                       "Sneaker", "Bag", "Ankle boot"],
                      "Fashion-MNIST clothing images (70 000 images, 28×28)"),
}


def _torchvision_dataset(name: str, seed: int, data_root: Path | None) -> Dataset:
    folder, class_names, description = _TORCHVISION[name]
    root = Path(data_root) if data_root is not None else default_data_root()
    try:
        from torchvision import datasets as tvd
        cls = getattr(tvd, folder)
        train = cls(str(root), train=True, download=True)
        test = cls(str(root), train=False, download=True)
    except Exception as err:  # no network, partial files, bad checksum, read-only folder...
        # the person gets what to do; the library's own words (urlopen errors...) go to `detail`
        problem = ("could not be downloaded (no internet connection here?)" if _is_network_error(err)
                   else "could not be loaded or downloaded")
        unavailable = DatasetUnavailable(
            f"The {folder} files are not in {root / folder / 'raw'} and {problem}. "
            f"Put the four official .gz files (train/t10k images and labels) in "
            f"{root / folder / 'raw'} or set KDLAB_DATA to a folder that has {folder}/raw/ in it, "
            f"then reload.")
        unavailable.detail = f"{type(err).__name__}: {err}"
        raise unavailable from err
    X_all = train.data.float().div_(255.0).unsqueeze(1)
    y_all = train.targets.long()
    X_test = test.data.float().div_(255.0).unsqueeze(1)
    y_test = test.targets.long()
    # the official test set stays the test set; 5 000 training images become validation
    perm = torch.randperm(len(y_all), generator=torch.Generator().manual_seed(seed))
    va, tr = perm[:5000], perm[5000:]
    return Dataset(name, X_all[tr], y_all[tr], X_all[va], y_all[va], X_test, y_test,
                   tuple(class_names), (1, 28, 28), True, seed, description)


DATASETS = {
    "digits": _digits,
    "moons": _moons,
    "spirals": _spirals,
    "mnist": functools.partial(_torchvision_dataset, "mnist"),
    "fashion_mnist": functools.partial(_torchvision_dataset, "fashion_mnist"),
}


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, seed: int, data_root: str | None) -> Dataset:
    from kdcore import userdata
    if userdata.is_user_dataset(name):   # an upload, stored under the cache folder (kdcore.userdata)
        return userdata.load(userdata.fingerprint_of(name), seed)
    return DATASETS[name](seed, Path(data_root) if data_root else None)


def load_dataset(name: str = "digits", seed: int = 0, data_root: str | Path | None = None) -> Dataset:
    """Load a dataset by name; the split depends on `seed` and on nothing else.

    Raises `DatasetUnavailable` with a readable message if it cannot be had.
    """
    from kdcore.userdata import is_user_dataset
    if name not in DATASETS and not is_user_dataset(name):
        raise DatasetUnavailable(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    return _load_cached(name, int(seed), str(data_root) if data_root is not None else None)


def labelled_mask(y: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """A boolean mask keeping `fraction` of the labels, stratified per class.

    The transfer set's other examples keep their inputs (the teacher's soft
    targets still reach them) but their labels are hidden. At least one label
    per class is kept.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError("the labelled fraction must be in (0, 1]")
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(len(y), dtype=torch.bool)
    for c in torch.unique(y):
        idx = torch.nonzero(y == c).flatten()
        k = max(1, int(round(len(idx) * fraction)))
        mask[idx[torch.randperm(len(idx), generator=g)[:k]]] = True
    return mask

"""CIFAR-10 as tensors, and a batch iterator that keeps a whole split on one device.

Where the images come from (first match wins, under the data folder ``wf_lessons.config.data_dir()``):

1. ``cifar-10-batches-py/``: torchvision's copy of the original release (``make data`` downloads it when online);
2. ``cifar10-jpg/{train,test}/<class>/*.jpg|png``: an image-folder copy, such as the course's offline archive
   (``make data CIFAR10_ARCHIVE=path/to/cifar10-jpg.tar.gz`` extracts it).

Either is decoded once into ``cache/cifar10-<split>-<source>.pt`` (uint8 images and int64 labels, written
atomically); a cache that is corrupt or older than its source is rebuilt. Command line::

    python -m wf_lessons.data prepare [--archive PATH]   # download or extract, then build the caches
    python -m wf_lessons.data info                       # what is there
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from wf_lessons import atomic, config

#: CIFAR-10's classes in its own label order (also the alphabetical order of the image-folder names).
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 50_000, "test": 10_000}
#: Per-channel mean and std of the original training set, for normalisation.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

TORCHVISION_FOLDER = "cifar-10-batches-py"
IMAGE_FOLDER = "cifar10-jpg"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
_CACHE_VERSION = 1


class DataNotFoundError(FileNotFoundError):
    """CIFAR-10 is not in the data folder; the message says how to get it."""


class DataLayoutError(ValueError):
    """A CIFAR-10 folder exists but is not laid out as expected; the message says what was found."""


def _how_to_get(root: Path) -> str:
    return (
        f"CIFAR-10 was not found under {root}. Get it in one of two ways:\n"
        f"  1. online: `make data` (or `python -m wf_lessons.data prepare`) downloads the original release with\n"
        f"     torchvision into {root / TORCHVISION_FOLDER};\n"
        f"  2. offline: `make data CIFAR10_ARCHIVE=path/to/cifar10-jpg.tar.gz` (or `python -m wf_lessons.data\n"
        f"     prepare --archive PATH`) extracts an image-folder copy (train|test/<class>/*.jpg) into\n"
        f"     {root / IMAGE_FOLDER}.\n"
        f"Set WF_DATA_DIR to use another data folder."
    )


# ----------------------------------------------------------------------------------------------- sources
def _torchvision_files(root: Path, split: str) -> list[Path]:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return [root / TORCHVISION_FOLDER / n for n in names]


def _image_files(root: Path, split: str) -> list[tuple[Path, int]]:
    """Every image of one split of an image-folder copy with its label, checking the layout on the way."""
    split_dir = root / IMAGE_FOLDER / split
    if not split_dir.is_dir():
        found = sorted(p.name for p in (root / IMAGE_FOLDER).iterdir())
        raise DataLayoutError(
            f"{root / IMAGE_FOLDER} has no '{split}' folder: found {found}, expected the folders "
            f"{list(SPLITS)}, each holding one folder per class"
        )
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if classes != sorted(CLASSES):
        raise DataLayoutError(
            f"{split_dir} holds the class folders {classes}; expected exactly the CIFAR-10 classes {list(CLASSES)}"
        )
    files = []
    for label, name in enumerate(CLASSES):
        images = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataLayoutError(f"{split_dir / name} holds no .jpg or .png images")
        files += [(p, label) for p in images]
    return files


def find_source(root: Path | None = None) -> str:
    """Which copy of CIFAR-10 the data folder holds: ``"torchvision"`` or ``"image-folder"``.

    Raises :class:`DataNotFoundError` (saying how to get the data) when there is neither.
    """
    root = Path(root) if root is not None else config.data_dir()
    if all(p.exists() for split in SPLITS for p in _torchvision_files(root, split)):
        return "torchvision"
    if (root / IMAGE_FOLDER).is_dir():
        return "image-folder"
    raise DataNotFoundError(_how_to_get(root))


def _fingerprint(paths: list[Path]) -> str:
    """Cheap identity of a set of files (names, sizes, modification times): changes when the source changes."""
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()


def _decode_torchvision(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import CIFAR10

    ds = CIFAR10(str(root), train=split == "train", download=False)
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    return images, torch.tensor(ds.targets, dtype=torch.int64)


def _decode_image_folder(files: list[tuple[Path, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    images = torch.empty(len(files), 32, 32, 3, dtype=torch.uint8)
    for i, (path, _) in enumerate(files):
        with Image.open(path) as image:
            if image.size != (32, 32):
                raise DataLayoutError(f"{path} is {image.size[0]}x{image.size[1]} pixels; CIFAR-10 images are 32x32")
            images[i] = torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8).view(32, 32, 3)
    labels = torch.tensor([label for _, label in files], dtype=torch.int64)
    return images.permute(0, 3, 1, 2).contiguous(), labels  # (N, 32, 32, 3) -> (N, 3, 32, 32)


def _load_cache(path: Path, fingerprint: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The cached tensors if the cache is intact and made from the current source, else None (with a warning)."""
    if not path.exists():
        return None
    try:
        cache = torch.load(path, weights_only=True)
        images, labels = cache["images"], cache["labels"]
        ok = (
            cache.get("version") == _CACHE_VERSION
            and images.dtype == torch.uint8
            and images.ndim == 4
            and images.shape[1:] == (3, 32, 32)
            and labels.dtype == torch.int64
            and labels.shape == (images.shape[0],)
        )
        if not ok:
            raise ValueError("unexpected contents")
    except Exception as error:  # any unreadable file is simply rebuilt
        warnings.warn(f"the CIFAR-10 cache {path} is corrupt ({error}); rebuilding it", stacklevel=3)
        return None
    if cache.get("fingerprint") != fingerprint:
        warnings.warn(f"the CIFAR-10 cache {path} is older than its source; rebuilding it", stacklevel=3)
        return None
    return images, labels


def cifar10(
    split: str = "train", root: Path | str | None = None, per_class: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 as tensors: uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)`` in ``0..9``.

    ``root`` defaults to :func:`wf_lessons.config.data_dir`. ``per_class`` keeps the first ``per_class`` images
    of each class (a balanced, deterministic subset for quick mode and small examples). The first call decodes
    the images into a cache file; later calls load that file.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if per_class is not None and per_class < 1:
        raise ValueError(f"per_class must be a positive int or None, got {per_class!r}")
    root = Path(root) if root is not None else config.data_dir()
    source = find_source(root)
    if source == "torchvision":
        sources, files = _torchvision_files(root, split), None
    else:
        files = _image_files(root, split)
        sources = [p for p, _ in files]
    cache_path = root / "cache" / f"cifar10-{split}-{source}.pt"
    fingerprint = _fingerprint(sources)
    cached = _load_cache(cache_path, fingerprint)
    if cached is None:
        images, labels = _decode_torchvision(root, split) if files is None else _decode_image_folder(files)
        atomic.torch_save(
            {"version": _CACHE_VERSION, "fingerprint": fingerprint, "images": images, "labels": labels}, cache_path
        )
    else:
        images, labels = cached
    if per_class is not None:
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(len(CLASSES))])
        keep = keep.sort().values
        images, labels = images[keep], labels[keep]
    return images, labels


# ------------------------------------------------------------------------------------- batched augmentation
def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crops of a batch after zero-padding, as one gather: ``(B, C, H, W)`` -> ``(B, C, H, W)``."""
    if padding == 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))  # (B, C, H + 2p, W + 2p)
    dy, dx = (
        torch.randint(0, 2 * padding + 1, (2, b), generator=generator, device=images.device).unbind(0)
    )
    rows = (dy[:, None] + torch.arange(h, device=images.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=images.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=images.device)[:, None, None, None]
    channel = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image of a ``(B, C, H, W)`` batch left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], generator=generator, device=images.device) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def normalize(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 ``(B, 3, H, W)`` -> float, scaled to [0, 1] and standardised with CIFAR-10's mean and std."""
    mean = torch.tensor(MEAN, device=images.device, dtype=dtype)[:, None, None]
    std = torch.tensor(STD, device=images.device, dtype=dtype)[:, None, None]
    return (images.to(dtype) / 255 - mean) / std


class DeviceLoader:
    """Batches of one split held entirely on ``device``, augmented there with batched tensor ops.

    Training loaders (``train=True``) shuffle and apply random crop (zero padding ``crop_padding``) and horizontal
    flip; evaluation loaders keep the order and every image. Randomness comes from a generator seeded with
    ``(seed, epoch)``, so epoch ``e`` yields the same batches whenever it is run: resuming is exact.

    Iterating yields ``(images, labels)``: float ``(B, 3, 32, 32)`` normalised by :func:`normalize`, and int64
    ``(B,)``. Iterating the loader itself runs epochs 0, 1, 2, ...; :meth:`epoch` picks one explicitly.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        train: bool,
        device: torch.device | str | None = None,
        seed: int = 0,
        crop_padding: int = 4,
        flip: bool = True,
        drop_last: bool | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels must be (N,) = ({images.shape[0]},), got {tuple(labels.shape)}")
        if not 1 <= batch_size <= images.shape[0]:
            raise ValueError(f"batch_size must be between 1 and the split size {images.shape[0]}, got {batch_size}")
        self.device = torch.device(device) if device is not None else config.device()
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.batch_size, self.train, self.seed = batch_size, train, seed
        self.crop_padding, self.flip = crop_padding, flip
        self.drop_last = train if drop_last is None else drop_last
        self.next_epoch = 0

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.next_epoch += 1
        return self.epoch(self.next_epoch - 1)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (deterministic given the seed)."""
        n = self.images.shape[0]
        generator = torch.Generator(device=self.device).manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=generator, device=self.device) if self.train else None
        for i in range(len(self)):
            index = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is not None:
                index = order[index]
            images, labels = self.images[index], self.labels[index]
            if self.train:
                images = random_crop(images, self.crop_padding, generator)
                if self.flip:
                    images = random_flip(images, generator)
            yield normalize(images), labels


# ----------------------------------------------------------------------------------------------- preparing
def extract_archive(archive: Path, root: Path) -> Path:
    """Extract an image-folder archive (``train|test/<class>/*``) into ``root/cifar10-jpg``, atomically.

    An existing ``cifar10-jpg`` folder is left as it is (nothing a user made is overwritten).
    """
    archive, target = Path(archive), root / IMAGE_FOLDER
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    if target.exists():
        print(f"{target} already exists; leaving it as it is")
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".extract-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        top = tmp if (tmp / "train").is_dir() else next((p for p in tmp.iterdir() if (p / "train").is_dir()), None)
        if top is None:
            raise DataLayoutError(f"{archive} holds {sorted(p.name for p in tmp.iterdir())}; expected train/ and test/")
        os.replace(top, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def prepare(root: Path | None = None, archive: Path | None = None) -> None:
    """Get CIFAR-10 into the data folder (extract ``archive``, or download with torchvision) and build caches."""
    root = Path(root) if root is not None else config.data_dir()
    if archive is not None:
        extract_archive(archive, root)
    else:
        try:
            find_source(root)
        except DataNotFoundError:
            from torchvision.datasets import CIFAR10

            for split in SPLITS:
                CIFAR10(str(root), train=split == "train", download=True)
    for split in SPLITS:
        start = time.perf_counter()
        images, labels = cifar10(split, root)
        counts = torch.bincount(labels, minlength=len(CLASSES)).tolist()
        print(f"{split}: {images.shape[0]} images ({find_source(root)}), per class {counts}, "
              f"{time.perf_counter() - start:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.data", description="Prepare or inspect CIFAR-10.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="download (or extract --archive) and cache CIFAR-10")
    p.add_argument("--archive", type=Path, help="an image-folder archive such as cifar10-jpg.tar.gz")
    p.add_argument("--root", type=Path, help="data folder (default: $WF_DATA_DIR or data/)")
    i = sub.add_parser("info", help="say which copy of CIFAR-10 is present")
    i.add_argument("--root", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            prepare(args.root, args.archive)
        else:
            root = args.root or config.data_dir()
            print(f"data folder: {root}\nsource: {find_source(root)}")
    except (DataNotFoundError, DataLayoutError, FileNotFoundError) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

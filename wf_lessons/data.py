"""CIFAR-10 as tensors, and a batch iterator that keeps a whole split on one device.

Where the images come from (first match wins, under the data folder ``wf_lessons.config.data_dir()``):

1. ``cifar-10-batches-py/``: torchvision's copy of the original release (``make data`` downloads it when online);
2. ``cifar10-jpg/{train,test}/<class>/*.jpg|png``: an image-folder copy, such as the course's offline archive
   (``make data CIFAR10_ARCHIVE=path/to/cifar10-jpg.tar.gz`` extracts it).

When neither is there, :func:`cifar10` fetches the original release once with torchvision's downloader (a progress
bar on the terminal), unless ``WF_NO_DOWNLOAD=1`` (``make test`` sets it for the tests, which never touch the
network); offline, the error says how to get the data instead.

Either is decoded once into ``cache/cifar10-<split>-<source>.pt`` (uint8 images, int64 labels and a SHA-256 digest
of both, written atomically). A cache is used only when its contents match its digest, its labels are those of
its source and its source has not changed since; otherwise it is rebuilt, with a warning. Command line::

    python -m wf_lessons.data prepare [--archive PATH]   # download or extract, then build the caches
    python -m wf_lessons.data check                      # is CIFAR-10 there? (downloads it when online)
    python -m wf_lessons.data info                       # what is there
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

from wf_lessons import atomic, config, runlog
from wf_lessons.checks import check_int

__all__ = ["CLASSES", "SPLITS", "SPLIT_SIZES", "MEAN", "STD", "TORCHVISION_FOLDER", "IMAGE_FOLDER", "IMAGE_SUFFIXES",
    "DOWNLOAD_TIMEOUT_S", "VALIDATION_SEED", "DataNotFoundError", "DataLayoutError", "cifar10", "DeviceLoader",
    "normalize", "random_crop", "random_flip", "validation_split", "check_labels", "find_source", "describe_source",
    "download", "extract_archive", "prepare", "check", "main"]

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
_CACHE_VERSION = 2  # 2: a digest of the contents is stored with them
DOWNLOAD_TIMEOUT_S = 60  # per network operation of the download


class DataNotFoundError(FileNotFoundError):
    """CIFAR-10 is not in the data folder; the message says how to get it."""


class DataLayoutError(ValueError):
    """A CIFAR-10 folder exists but is not laid out as expected; the message says what was found."""


def _how_to_get(root: Path, reason: str = "") -> str:
    return (
        f"CIFAR-10 was not found under {root}{reason}. Get it in one of two ways:\n"
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


def describe_source(root: Path | None = None) -> str:
    """The copy of CIFAR-10 a run reads, exactly, for its log: which release and where (a portable path)."""
    root = Path(root) if root is not None else config.data_dir()
    source = find_source(root)
    folder = root / (TORCHVISION_FOLDER if source == "torchvision" else IMAGE_FOLDER)
    what = ("the original release in torchvision's python format" if source == "torchvision" else
            "an image-folder copy (train|test/<class>/ image files, decoded with Pillow)")
    return f"CIFAR-10, {what}, {runlog.portable(folder)}"


def download(root: Path | None = None) -> Path:
    """Fetch the original CIFAR-10 release (about 170 MB) with torchvision's downloader into
    ``root/cifar-10-batches-py`` and return that folder.

    The download goes to a temporary folder that is renamed into place at the end, so an interrupted download leaves
    nothing half-made. Raises :class:`DataNotFoundError` (saying how to get the data) when ``WF_NO_DOWNLOAD`` is on
    or the download fails (offline).
    """
    root = Path(root) if root is not None else config.data_dir()
    target = root / TORCHVISION_FOLDER
    if not config.downloads_allowed():
        raise DataNotFoundError(_how_to_get(root, " and downloading is off (WF_NO_DOWNLOAD is set)"))
    if target.exists():
        raise DataLayoutError(f"{target} exists but lacks some of the CIFAR-10 batch files; remove it to download "
                              "again (it is not replaced automatically)")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".download-"))
    timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        print(f"CIFAR-10 is not in {root}: downloading the original release once (about 170 MB)", file=sys.stderr)
        try:
            _fetch(tmp)
        except (OSError, RuntimeError) as error:  # offline: URLError (an OSError); a damaged download: RuntimeError
            raise DataNotFoundError(_how_to_get(root, f" and downloading it failed ({error})")) from None
        _new_file_modes(tmp / TORCHVISION_FOLDER)
        os.replace(tmp / TORCHVISION_FOLDER, target)
    finally:
        socket.setdefaulttimeout(timeout)
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _fetch(folder: Path) -> None:
    """torchvision's downloader: the archive (with a progress bar), checked by MD5 and extracted into ``folder``."""
    from torchvision.datasets import CIFAR10

    CIFAR10(str(folder), train=True, download=True)  # one archive holds both splits


def _find_or_download(root: Path) -> str:
    """:func:`find_source`, downloading the data first when it is missing (and downloads are allowed)."""
    try:
        return find_source(root)
    except DataNotFoundError:
        download(root)
    return find_source(root)


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
        try:
            with Image.open(path) as image:
                size, pixels = image.size, image.convert("RGB").tobytes()
        except (OSError, SyntaxError, ValueError) as error:  # what PIL raises for a damaged or foreign file
            raise DataLayoutError(f"{path} is not a readable image ({error}); replace it or extract the archive "
                                  "again") from None
        if size != (32, 32):
            raise DataLayoutError(f"{path} is {size[0]}x{size[1]} pixels; CIFAR-10 images are 32x32")
        images[i] = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(32, 32, 3)
    return images.permute(0, 3, 1, 2).contiguous(), _labels_of(files)  # (N, 32, 32, 3) -> (N, 3, 32, 32)


def _labels_of(files: list[tuple[Path, int]]) -> torch.Tensor:
    return torch.tensor([label for _, label in files], dtype=torch.int64)


def _digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """SHA-256 of the cached tensors' bytes (images ``(N, 3, 32, 32)`` uint8, labels ``(N,)`` int64)."""
    h = hashlib.sha256()
    for t in (images, labels):
        h.update(f"{t.dtype}{tuple(t.shape)};".encode())
        h.update(t.contiguous().numpy())
    return h.hexdigest()


def _label_problem(labels: torch.Tensor, split: str, expected: torch.Tensor | None) -> str | None:
    """Why ``labels`` cannot be this split's (None if they can): the image folder's labels when ``expected`` is
    given, else CIFAR-10's known sizes (the original release has exactly N/10 images of each class)."""
    if expected is not None:
        return None if torch.equal(labels, expected) else "its labels are not those of the image folder"
    n, k = SPLIT_SIZES[split], len(CLASSES)
    if labels.numel() and not 0 <= labels.min() <= labels.max() < k:
        return f"its labels are not all in 0..{k - 1}"
    counts = torch.bincount(labels, minlength=k).tolist()
    if counts != [n // k] * k:
        return f"it holds {labels.shape[0]} labels with class counts {counts}, not CIFAR-10's {split} split"
    return None


def _check_writable(folder: Path) -> None:
    """Fail at once, before decoding 60,000 images, when the cache cannot be written."""
    if (reason := atomic.writable_folder(folder)) is not None:
        raise PermissionError(
            f"cannot write the cache folder {folder} ({reason}): the decoded images are cached "
            "there. Make the data folder writable, or copy the data to a writable folder and set WF_DATA_DIR to it"
        ) from None


def _load_cache(
    path: Path, fingerprint: str, split: str, expected_labels: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The cached tensors if the cache is intact (its digest), of this split (its labels: ``expected_labels`` when
    known) and made from the current source (its fingerprint); else None, with a warning saying why."""
    if not path.exists():
        return None
    try:
        cache = torch.load(path, weights_only=True)
        if cache.get("version") != _CACHE_VERSION:
            warnings.warn(f"the CIFAR-10 cache {path} was made by another version of the course; rebuilding it",
                          stacklevel=3)
            return None
        images, labels = cache["images"], cache["labels"]
        ok = (
            images.dtype == torch.uint8
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
    if cache.get("digest") != _digest(images, labels):
        warnings.warn(f"the CIFAR-10 cache {path} does not match the digest stored with it (it was changed or "
                      "damaged); rebuilding it", stacklevel=3)
        return None
    if cache.get("fingerprint") != fingerprint:
        warnings.warn(f"the CIFAR-10 cache {path} is older than its source; rebuilding it", stacklevel=3)
        return None
    problem = _label_problem(labels, split, expected_labels)
    if problem is not None:
        warnings.warn(f"the CIFAR-10 cache {path} is not of its source: {problem}; rebuilding it", stacklevel=3)
        return None
    return images, labels


def cifar10(
    split: str = "train", root: Path | str | None = None, per_class: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 as tensors: uint8 images ``(N, 3, 32, 32)`` and int64 labels ``(N,)`` in ``0..9``.

    ``root`` defaults to :func:`wf_lessons.config.data_dir`. ``per_class`` (an int >= 1, or None for all) keeps
    the first ``per_class`` images of each class (a balanced, deterministic subset for quick mode and small
    examples). The first call decodes the images into a cache file (fetching the data first when it is missing, see
    :func:`download`); later calls load that file.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if per_class is not None:
        check_int("per_class", per_class)
    root = Path(root) if root is not None else config.data_dir()
    source = _find_or_download(root)
    if source == "torchvision":
        sources, files = _torchvision_files(root, split), None
    else:
        files = _image_files(root, split)
        sources = [p for p, _ in files]
    cache_path = root / "cache" / f"cifar10-{split}-{source}.pt"
    fingerprint = _fingerprint(sources)
    cached = _load_cache(cache_path, fingerprint, split, None if files is None else _labels_of(files))
    if cached is None:
        _check_writable(cache_path.parent)
        images, labels = _decode_torchvision(root, split) if files is None else _decode_image_folder(files)
        cache = {"version": _CACHE_VERSION, "fingerprint": fingerprint, "digest": _digest(images, labels)}
        atomic.torch_save({**cache, "images": images, "labels": labels}, cache_path)
    else:
        images, labels = cached
    if per_class is not None:
        keep = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(len(CLASSES))])
        keep = keep.sort().values
        images, labels = images[keep], labels[keep]
    return images, labels


#: The seed of the held-out validation split: fixed, so that every run of every variant holds out the same images.
VALIDATION_SEED = 20_260_601


def validation_split(labels: torch.Tensor, size: int, seed: int = VALIDATION_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratified held-out split of a training set: indices ``(train, validation)``, each sorted, int64.

    ``labels`` ``(N,)`` int64; ``size`` validation images, the same number from each class (``size`` must be a
    multiple of the number of classes), drawn at random with a generator seeded by ``seed`` (fixed by default, so
    that every run shares one split). The two index sets are disjoint and cover ``0..N-1``.
    """
    check_int("size", size)
    classes = labels.unique()
    if size % len(classes):
        raise ValueError(f"a stratified validation split of {size} images needs a multiple of the "
                         f"{len(classes)} classes")
    per_class = size // len(classes)
    generator = torch.Generator().manual_seed(seed)
    held_out = []
    for c in classes:
        members = torch.nonzero(labels == c).flatten()
        if per_class >= len(members):
            raise ValueError(f"class {int(c)} has {len(members)} images: too few to hold out {per_class} and still "
                             f"train on it (validation size {size})")
        held_out.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    val = torch.cat(held_out).sort().values
    keep = torch.ones(labels.shape[0], dtype=torch.bool)
    keep[val] = False
    return torch.nonzero(keep).flatten(), val


# ------------------------------------------------------------------------------------- batched augmentation
def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crops of a batch after zero-padding (``padding`` pixels, an int >= 0), as one gather:
    ``(B, C, H, W)`` -> ``(B, C, H, W)``."""
    if check_int("padding", padding, low=0) == 0:
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
    """uint8 ``(B, 3, H, W)`` -> float, scaled to [0, 1] and standardised with CIFAR-10's mean and std.

    Only uint8 images (values 0..255, as :func:`cifar10` returns them) are accepted: float images are already
    scaled or standardised, and dividing them by 255 again would silently give near-constant inputs.
    """
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim < 3 \
            or images.shape[-3] != 3:
        if not isinstance(images, torch.Tensor):
            got = type(images).__name__
        elif images.dtype != torch.uint8:
            got = f"{images.dtype} images" + (" (already scaled or normalised? normalize does both itself: give it "
                                              "the uint8 images)" if images.is_floating_point() else "")
        else:
            got = f"shape {tuple(images.shape)}"
        raise ValueError(f"normalize expects uint8 images (..., 3, H, W) with values 0..255 as cifar10() returns them; "
                         f"got {got}")
    mean = torch.tensor(MEAN, device=images.device, dtype=dtype)[:, None, None]
    std = torch.tensor(STD, device=images.device, dtype=dtype)[:, None, None]
    return (images.to(dtype) / 255 - mean) / std


def check_labels(labels: object, n_images: int, num_classes: int | None = None, what: str = "labels") -> None:
    """Raise one ``ValueError`` naming ``what`` unless ``labels`` is an int64 tensor ``(n_images,)`` of class
    indices in ``[0, num_classes)`` (``>= 0`` when ``num_classes`` is None).

    Checked once, where labels enter (:class:`DeviceLoader`, ``train(config, data)``), so that a wrong label never
    reaches the loss: PyTorch's cross-entropy silently skips ``-100`` (its ``ignore_index``) and fails with an
    obscure message on other negative, too large, float or int32 labels.
    """
    classes = f"in [0, {num_classes})" if num_classes is not None else ">= 0"
    expected = f"{what} must be an int64 tensor of class indices {classes}, one per image ({n_images})"
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{expected}; got {type(labels).__name__}")
    if labels.dtype != torch.int64:
        raise ValueError(f"{expected}; got dtype {labels.dtype} (convert with .long())")
    if labels.shape != (n_images,):
        raise ValueError(f"{expected}; got shape {tuple(labels.shape)}")
    if n_images == 0:
        return
    outside = labels < 0
    if num_classes is not None:
        outside |= labels >= num_classes
    count = int(outside.sum())
    if count:
        low, high = int(labels.min()), int(labels.max())
        notes = ([f"the model has num_classes={num_classes}"] if num_classes is not None and high >= num_classes
                 else []) + (["-100, PyTorch's ignore_index, is not accepted: every image needs its class"]
                             if bool((labels == -100).any()) else [])
        raise ValueError(f"{expected}; got {count} outside that range, from {low} to {high}"
                         + (f" ({'; '.join(notes)})" if notes else ""))


class DeviceLoader:
    """Batches of one split held entirely on ``device``, augmented there with batched tensor ops.

    Training loaders (``train=True``) shuffle and apply random crop (zero padding ``crop_padding``) and horizontal
    flip; evaluation loaders keep the order and every image. Randomness comes from a generator seeded with
    ``(seed, epoch)``, so epoch ``e`` yields the same batches whenever it is run: resuming is exact.

    Iterating yields ``(images, labels)``: float ``(B, 3, 32, 32)`` normalised by :func:`normalize`, and int64
    ``(B,)``. Iterating the loader itself runs epochs 0, 1, 2, ...; :meth:`epoch` picks one explicitly.

    ``labels`` must be int64 class indices ``>= 0`` (and ``< num_classes`` when given), one per image: see
    :func:`check_labels`.
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
        num_classes: int | None = None,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        check_labels(labels, images.shape[0], num_classes)
        if check_int("batch_size", batch_size) > images.shape[0]:
            raise ValueError(f"batch_size must be between 1 and the split size {images.shape[0]}, got {batch_size}")
        check_int("crop_padding", crop_padding, low=0)
        side = min(images.shape[-2:])
        if train and crop_padding > side // 2:
            raise ValueError(f"crop_padding must be an int in [0, {side // 2}] (at most half the image side {side}, so "
                             f"that every crop keeps a quarter of the image), got {crop_padding}")
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

    An existing ``cifar10-jpg`` folder is left as it is (nothing a user made is overwritten). The extracted folders
    and files get the modes of newly made ones (readable by others as far as the umask allows, whatever the
    archive's modes), so that a shared data folder can be read by everyone who uses it.
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
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError) as error:
            reason = " ".join(str(error).split())  # tarfile lists one reason per compression on separate lines
            raise DataLayoutError(f"{archive} is not a readable tar archive ({reason}); expected an image-folder "
                                  "archive such as cifar10-jpg.tar.gz (train|test/<class>/*.jpg)") from None
        top = tmp if (tmp / "train").is_dir() else next((p for p in tmp.iterdir() if (p / "train").is_dir()), None)
        if top is None:
            raise DataLayoutError(f"{archive} holds {sorted(p.name for p in tmp.iterdir())}; expected train/ and test/")
        _new_file_modes(top)
        os.replace(top, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _new_file_modes(folder: Path) -> None:
    """Give an extracted tree the modes of any newly made folder and file (``0o777`` and ``0o666`` less the umask,
    usually ``rwxr-xr-x`` and ``rw-r--r--``), so that a shared data folder is readable by the others the umask
    allows: neither the private temporary folder it was extracted in nor the archive's own modes decide."""
    umask = os.umask(0o022)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def prepare(root: Path | None = None, archive: Path | None = None) -> None:
    """Get CIFAR-10 into the data folder (extract ``archive``, or download with torchvision) and build caches."""
    root = Path(root) if root is not None else config.data_dir()
    if archive is not None:
        extract_archive(archive, root)
    else:
        _find_or_download(root)
    for split in SPLITS:
        start = time.perf_counter()
        images, labels = cifar10(split, root)
        counts = torch.bincount(labels, minlength=len(CLASSES)).tolist()
        print(f"{split}: {images.shape[0]} images ({find_source(root)}), per class {counts}, "
              f"{time.perf_counter() - start:.1f} s")


def check(root: Path | None = None) -> str:
    """The preflight of ``make test``: CIFAR-10 is in the data folder (downloaded now if missing and allowed), laid
    out as expected. Returns a one-line description; raises :class:`DataNotFoundError` saying how to get the data.
    """
    root = Path(root) if root is not None else config.data_dir()
    source = _find_or_download(root)
    if source == "image-folder":
        n = sum(len(_image_files(root, split)) for split in SPLITS)  # checks the layout, lists every image
    else:
        n = sum(SPLIT_SIZES.values())
    return f"CIFAR-10 is ready in {root} ({source}, {n:,} images)"


def main(argv: list[str] | None = None) -> int:
    """The command line, ``python -m wf_lessons.data prepare|check|info [--root DIR]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.data", description="Prepare or inspect CIFAR-10.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="download (or extract --archive) and cache CIFAR-10")
    p.add_argument("--archive", type=Path, help="an image-folder archive such as cifar10-jpg.tar.gz")
    c = sub.add_parser("check", help="make sure CIFAR-10 is there (downloading it when missing and online)")
    i = sub.add_parser("info", help="say which copy of CIFAR-10 is present")
    for command in (p, c, i):
        command.add_argument("--root", type=Path, help="data folder (default: $WF_DATA_DIR or data/)")
    args = parser.parse_args(argv)
    if args.root is not None and args.root.exists() and not args.root.is_dir():
        parser.error(f"argument --root: expected a data folder, got {args.root}, which is a file")
    try:
        if args.command == "prepare":
            prepare(args.root, args.archive)
        elif args.command == "check":
            print(check(args.root))
        else:
            root = args.root or config.data_dir()
            print(f"data folder: {root}\nsource: {find_source(root)}")
    except (ValueError, OSError) as error:  # DataLayoutError and DataNotFoundError among them
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

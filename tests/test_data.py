import warnings

import pytest
import torch
from PIL import Image

from wf_lessons import data
from wf_lessons.config import REPO_ROOT


def _fake_image_folder(root, per_class=2, classes=data.CLASSES, size=32):
    """A tiny CIFAR-10-shaped image folder; image i of class c is filled with value 10 * c + i."""
    for split in data.SPLITS:
        for c, name in enumerate(classes):
            folder = root / data.IMAGE_FOLDER / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (size, size), (10 * c + i,) * 3).save(folder / f"{i:04d}.png")
    return root


def test_missing_folder_says_how_to_get_the_data(tmp_path):
    with pytest.raises(data.DataNotFoundError) as error:
        data.cifar10("train", root=tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    assert "make data" in message and "CIFAR10_ARCHIVE=" in message and "WF_DATA_DIR" in message


def test_wrong_class_names_list_what_was_found(tmp_path):
    _fake_image_folder(tmp_path, per_class=1, classes=[*data.CLASSES[:9], "lorry"])
    with pytest.raises(data.DataLayoutError, match="lorry.*expected exactly the CIFAR-10 classes"):
        data.cifar10("train", root=tmp_path)


def test_missing_split_folder_is_named(tmp_path):
    (tmp_path / data.IMAGE_FOLDER / "training").mkdir(parents=True)
    with pytest.raises(data.DataLayoutError, match=r"no 'test' folder: found \['training'\]"):
        data.cifar10("test", root=tmp_path)


def test_wrong_image_size_is_rejected(tmp_path):
    _fake_image_folder(tmp_path, per_class=1, size=28)
    with pytest.raises(data.DataLayoutError, match="28x28|32x32"):
        data.cifar10("test", root=tmp_path)


def test_image_folder_is_decoded_in_cifar_order(tmp_path):
    _fake_image_folder(tmp_path)
    images, labels = data.cifar10("train", root=tmp_path)
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert labels.tolist() == [c for c in range(10) for _ in range(2)]
    assert images[:, 0, 0, 0].tolist() == [10 * c + i for c in range(10) for i in range(2)]
    sub_images, sub_labels = data.cifar10("train", root=tmp_path, per_class=1)
    assert sub_labels.tolist() == list(range(10)) and torch.equal(sub_images, images[::2])


def test_corrupt_cache_is_rebuilt(tmp_path):
    _fake_image_folder(tmp_path)
    images, _ = data.cifar10("test", root=tmp_path)
    cache = tmp_path / "cache" / "cifar10-test-image-folder.pt"
    cache.write_bytes(b"not a tensor file")
    with pytest.warns(UserWarning, match="corrupt"):
        again, _ = data.cifar10("test", root=tmp_path)
    assert torch.equal(images, again)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt cache loads cleanly
        data.cifar10("test", root=tmp_path)


def test_stale_cache_is_rebuilt(tmp_path):
    _fake_image_folder(tmp_path)
    data.cifar10("test", root=tmp_path)
    Image.new("RGB", (32, 32)).save(tmp_path / data.IMAGE_FOLDER / "test/cat/9999.png")
    with pytest.warns(UserWarning, match="older than its source"):
        images, labels = data.cifar10("test", root=tmp_path)
    assert images.shape[0] == 21 and (labels == data.CLASSES.index("cat")).sum() == 3


def test_extract_archive_never_overwrites(tmp_path):
    import tarfile

    src = _fake_image_folder(tmp_path / "src", per_class=1) / data.IMAGE_FOLDER
    archive = tmp_path / "c.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in data.SPLITS:
            tar.add(src / split, arcname=split)
    root = tmp_path / "root"
    data.extract_archive(archive, root)
    assert data.check(root).startswith("CIFAR-10 is ready")
    assert data.cifar10("test", root=root)[0].shape[0] == 10
    marker = root / data.IMAGE_FOLDER / "mine.txt"
    marker.write_text("a learner's file")
    data.extract_archive(archive, root)
    assert marker.read_text() == "a learner's file"


REAL = REPO_ROOT / "data" / data.IMAGE_FOLDER


@pytest.mark.skipif(not REAL.is_dir(), reason="real CIFAR-10 not extracted (make data)")
def test_real_cifar10_sizes():
    for split, n in data.SPLIT_SIZES.items():
        images, labels = data.cifar10(split, root=REPO_ROOT / "data")
        assert images.shape == (n, 3, 32, 32)
        assert torch.bincount(labels).tolist() == [n // 10] * 10


# ----------------------------------------------------------------------------------------- augmentation
def test_random_crop_is_a_window_of_the_padded_image():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8, generator=g)
    crops = data.random_crop(images, 2, generator=g)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    offsets = [(dy, dx) for dy in range(5) for dx in range(5)]
    for crop, pad in zip(crops, padded):
        assert any(torch.equal(crop, pad[:, dy : dy + 8, dx : dx + 8]) for dy, dx in offsets)
    assert not all(torch.equal(c, i) for c, i in zip(crops, images))  # some crops moved


def test_random_flip_flips_about_half():
    images = torch.arange(8.0).repeat(1000, 3, 8, 1)  # (1000, 3, 8, 8): every row 0..7
    flipped = data.random_flip(images, generator=torch.Generator().manual_seed(0))
    is_flipped = flipped[:, 0, 0, 0] == 7
    assert torch.equal(flipped[is_flipped], images[is_flipped].flip(-1))
    assert torch.equal(flipped[~is_flipped], images[~is_flipped])
    assert 400 < int(is_flipped.sum()) < 600


def _toy_split(n=50):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 10


def test_train_loader_is_seeded_per_epoch():
    images, labels = _toy_split()
    loader = data.DeviceLoader(images, labels, 16, train=True, device="cpu", seed=7)
    assert len(loader) == 3  # drop_last for training
    first = [y for _, y in loader.epoch(0)]
    assert all(torch.equal(a, b) for a, b in zip(first, [y for _, y in loader.epoch(0)]))
    assert not all(torch.equal(a, b) for a, b in zip(first, [y for _, y in loader.epoch(1)]))
    x, y = next(iter(loader))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (16,)


def test_eval_loader_yields_every_image_once_in_order():
    images, labels = _toy_split()
    loader = data.DeviceLoader(images, labels, 16, train=False, device="cpu")
    xs, ys = zip(*loader)
    assert len(loader) == 4 and torch.equal(torch.cat(ys), labels)
    assert torch.allclose(torch.cat(xs), data.normalize(images))


def test_loader_rejects_bad_input():
    images, labels = _toy_split()
    with pytest.raises(ValueError, match="batch_size"):
        data.DeviceLoader(images, labels, 51, train=True, device="cpu")
    with pytest.raises(ValueError, match="uint8"):
        data.DeviceLoader(images.float(), labels, 8, train=True, device="cpu")
    with pytest.raises(ValueError, match="labels"):
        data.DeviceLoader(images, labels[:-1], 8, train=True, device="cpu")


def test_normalize_standardises_with_cifar_statistics():
    image = torch.tensor(data.MEAN).mul(255)[None, :, None, None].expand(1, 3, 2, 2).round().to(torch.uint8)
    assert data.normalize(image).abs().max() < 0.01


def test_a_run_log_names_the_exact_copy_of_the_data(tmp_path):
    from wf_lessons.data import IMAGE_FOLDER, describe_source

    for split in ("train", "test"):
        for name in data.CLASSES:
            (tmp_path / IMAGE_FOLDER / split / name).mkdir(parents=True)
    assert describe_source(tmp_path).startswith("CIFAR-10, an image-folder copy (train|test/<class>/ image files")
    assert describe_source(tmp_path).endswith(f"{IMAGE_FOLDER}")

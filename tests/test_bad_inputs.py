"""A catalogue of bad inputs and faults (issue 14): each one fails at once with an error that names what was wrong
and what was expected, loses no data, and is never silently accepted.

Library calls: the exception type and words of its message. Command lines: exit status 2, one ``error:`` line,
no traceback, and nothing measured or written first. No test touches the network or the real data folder.
"""

import json
import urllib.error
from pathlib import Path

import pytest
import torch
from PIL import Image

from wf_lessons import bench, config, data, dynamic_dwconv, erf, train
from wf_lessons.dynamic_dwconv import AdaptiveDWConv, per_sample_depthwise_conv, tap_sources
from wf_lessons.dynamic_linear import grid_size
from wf_lessons.models import ViT, WeightFormer, build_model, load_reference_state_dict, predicted_weights

SMALL = {"img_size": 16, "patch_size": 4, "num_classes": 10, "embed_dim": 16, "depth": 2}
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


# ------------------------------------------------------------------------------------------------- models
@pytest.mark.parametrize(
    ("cls", "overrides", "words"),
    [
        (WeightFormer, {"depth": -1}, "depth must be an int >= 0, got -1"),
        (WeightFormer, {"num_classes": 0}, "num_classes must be an int >= 1, got 0"),
        (WeightFormer, {"in_chans": 0}, "in_chans must be an int >= 1, got 0"),
        (WeightFormer, {"img_size": -5}, "img_size must be an int >= 1, got -5"),
        (WeightFormer, {"img_size": "abc"}, "img_size must be an int >= 1, got 'abc' (a str)"),
        (ViT, {"img_size": 18}, "img_size must be a multiple of patch_size=4 (at least one whole patch), got 18"),
        (WeightFormer, {"drop_path": 1.5}, "drop_path must be a number in [0, 1), got 1.5"),
        (WeightFormer, {"embed_dim": 0}, "embed_dim must be an int >= 1, got 0"),
        (WeightFormer, {"patch_size": 0}, "patch_size must be an int >= 1, got 0"),
        (WeightFormer, {"depth": 2.5}, "depth must be an int >= 0, got 2.5"),
        (WeightFormer, {"mlp_ratio": 0}, "mlp_ratio must be a finite number > 0"),
        (WeightFormer, {"dynamic_blocks": "12"}, "dynamic_blocks must be a tuple or list of distinct block indices"),
        (WeightFormer, {"dynamic_blocks": (1, 1)}, "distinct block indices in 0..1, got (1, 1)"),
        (WeightFormer, {"dynamic_blocks": (5,)}, "block indices in 0..1, got (5,)"),
        (WeightFormer, {"linear_predictor": ["gap"]}, "unknown linear_predictor ['gap']; valid:"),
        (WeightFormer, {"dwc_predictor": "sobel"}, "unknown dwc_predictor 'sobel'; valid:"),
        (ViT, {"img_size": 2, "patch_size": 16}, "img_size must be a multiple of patch_size=16 (at least one whole"),
        (ViT, {"depth": -1}, "depth must be an int >= 0, got -1"),
        (ViT, {"drop_path": 1.0}, "drop_path must be a number in [0, 1), got 1.0"),
        (ViT, {"num_heads": 0}, "num_heads must be an int >= 1, got 0"),
        (ViT, {"num_heads": 3}, "embed_dim=16 must be divisible by num_heads=3"),
    ],
)
def test_model_arguments(cls, overrides, words):
    kwargs = {**SMALL, **({"num_heads": 2} if cls is ViT else {}), **overrides}
    with pytest.raises(ValueError) as error:
        cls(**kwargs)
    assert words in str(error.value)


@pytest.mark.parametrize(
    ("name", "overrides", "error", "words"),
    [
        ("wf-cifar", {"depth": -1}, ValueError, "depth must be an int >= 0"),
        ("deit-cifar", {"img_size": 3}, ValueError, "img_size must be a multiple of patch_size=2"),
        ("wf-cifar", {"img_size": "abc"}, ValueError, "img_size must be an int >= 1, got 'abc'"),
        ("wf-cifar-tiny", {"num_classes": 0}, ValueError, "num_classes must be an int >= 1"),
        ("wf-cifar", {"heads": 3}, TypeError, "bad override for 'wf-cifar'"),
        ("resnet50", {}, ValueError, "unknown model 'resnet50'; valid names: wfm-t"),
        (["wf-cifar"], {}, ValueError, "unknown model ['wf-cifar']"),
    ],
)
def test_build_model_arguments(name, overrides, error, words):
    with pytest.raises(error) as caught, torch.device("meta"):
        build_model(name, **overrides)
    assert words in str(caught.value)


def test_depth_zero_is_the_stem_and_head_alone():  # chapter 04 counts their parameters so
    assert len(WeightFormer(**{**SMALL, "depth": 0}).blocks) == 0
    assert len(ViT(**{**SMALL, "depth": 0}, num_heads=2).blocks) == 0


def test_reference_state_dict_with_a_non_tensor_is_named():
    model = WeightFormer(**SMALL)
    state = {**model.state_dict(), "head.bias": [0.0] * 10}
    with pytest.raises(ValueError, match=r"wrong shape \(1\): head.bias: checkpoint a list, not a tensor"):
        load_reference_state_dict(model, state)


def test_predicted_weights_needs_a_weightformer():
    with pytest.raises(TypeError, match="predicted_weights needs a WeightFormer .* got ViT"):
        predicted_weights(ViT(**SMALL, num_heads=2), torch.randn(1, 3, 16, 16))


# ------------------------------------------------------------------------------------------------- layers
def test_wrong_size_bias_is_named_without_mixing_batch_and_channels():
    x, kernels = torch.randn(2, 4, 5, 5), torch.randn(2, 4, 3, 3)
    for method in dynamic_dwconv.CONV_METHODS:
        with pytest.raises(ValueError) as error:
            per_sample_depthwise_conv(x, kernels, torch.randn(3), method)
        message = str(error.value)
        assert "(C,) = (4,)" in message and "got shape (3,)" in message
        assert "8" not in message  # B * C = 8 is the grouped conv's business, not the caller's


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda layer: tap_sources(layer, (8, 8), tap=(-1, -1)), "tap must be a pair (i, j) of ints in 0..2"),
        (lambda layer: tap_sources(layer, (8, 8), tap=(0, 3)), "the kernel is 3x3), got (0, 3)"),
        (lambda layer: tap_sources(layer, (0, 8), tap=(1, 1)), "size must be a pair of positive ints (H, W)"),
        (lambda layer: dynamic_dwconv.parameter_count("adaptive", 0), "dim must be an int >= 1, got 0"),
        (lambda layer: dynamic_dwconv.adaptive_pool_bins(True), "size must be an int >= 1, got True"),
    ],
)
def test_dwconv_arguments(call, words):
    with pytest.raises(ValueError) as error:
        call(AdaptiveDWConv(4))
    assert words in str(error.value)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((-4,), "n_tokens must be an int >= 1, got -4"),
        ((0,), "n_tokens must be an int >= 1, got 0"),
        ((6,), "6 tokens do not form a square grid"),
        ((6, (2, 2)), "hw=(2, 2) gives 4 grid positions"),
    ],
)
def test_grid_size_arguments(args, words):
    with pytest.raises(ValueError) as error:
        grid_size(*args)
    assert words in str(error.value)


# ------------------------------------------------------------------------------------------------- erf
RAW = torch.rand(16, 16) + 0.01


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: erf.display_map(RAW, power=-1), "power must be a finite number > 0, got -1"),
        (lambda: erf.display_map(RAW, power=0), "power must be a finite number > 0, got 0"),
        (lambda: erf.display_map(torch.full((4, 4), float("nan"))), "NaN or infinite values"),
        (lambda: erf.outside_share(RAW, (10, 2, 0, 8)), "0 <= top <= bottom and 0 <= left <= right"),
        (lambda: erf.outside_share(RAW, (0, 8, 8, 2)), "got RFBox(top=0, bottom=8, left=8, right=2)"),
        (lambda: erf.outside_share(RAW.clone().fill_(float("inf")), (0, 8, 0, 8)), "NaN or infinite values"),
    ],
)
def test_erf_arguments(call, words):
    with pytest.raises(ValueError) as error:
        call()
    assert words in str(error.value)


def test_an_empty_box_leaves_all_the_mass_outside():
    assert erf.outside_share(RAW, (4, 4, 4, 4)) == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: config.device("foo"), "unknown device 'foo': expected 'cpu', 'cuda'"),
        (lambda: config.device("meta"), "device 'meta' is not supported by the course"),
        (lambda: config.seed_everything(True), "seed must be an int >= 0, got True"),
        (lambda: config.new_run_log_path("../x"), "must be a plain file name"),
        (lambda: config.new_run_log_path("/tmp/x"), "must be a plain file name"),
        (lambda: config.new_run_log_path(".hidden"), "must be a plain file name"),
        (lambda: config.new_run_log_path(""), "must be a plain file name"),
    ],
)
def test_config_arguments(call, words):
    with pytest.raises(ValueError) as error:
        call()
    assert words in str(error.value)


@NO_CUDA
def test_cuda_without_cuda():
    with pytest.raises(ValueError, match="CUDA is not available on this machine; use 'cpu'"):
        config.device("cuda")


def test_no_download_switch_rejects_typos(monkeypatch):
    monkeypatch.setenv("WF_NO_DOWNLOAD", "sometimes")
    with pytest.raises(ValueError, match="WF_NO_DOWNLOAD='sometimes' is not understood"):
        config.downloads_allowed()


# ------------------------------------------------------------------------------------------------- command lines
def _cli(main, argv, capsys):
    """Run a command line in-process: its exit status and its stderr."""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """``data/runs/`` redirected to a temporary folder; measuring anything fails the test."""
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setattr(config, "runs_dir", lambda: folder)

    def measured(*args, **kwargs):
        raise AssertionError("a bad argument must fail before anything is measured")

    monkeypatch.setattr(bench, "scaling", measured)
    monkeypatch.setattr(bench, "train_throughput", measured)
    monkeypatch.setattr(bench, "dwconv_benchmark", measured)
    return folder


BENCH_CASES = [
    (["train-throughput", "--batch", "0"], "argument --batch: expected an int >= 1, got 0"),
    (["train-throughput", "--steps", "0"], "argument --steps: expected an int >= 1, got 0"),
    (["train-throughput", "--batch", "-1"], "argument --batch: expected an int >= 1, got -1"),
    (["train-throughput", "--batch", "two"], "argument --batch: expected an int >= 1, got 'two'"),
    (["train-throughput", "--warmup", "-1"], "argument --warmup: expected an int >= 0, got -1"),
    (["train-throughput", "--threads", "0"], "argument --threads: expected an int >= 1, got 0"),
    (["train-throughput", "--models", "resnet"], "argument --models: invalid choice: 'resnet'"),
    (["train-throughput", "--device", "foo"], "error: unknown device 'foo'"),
    (["train-throughput", "--name", "../../x"], "error: the run log name must be a plain file name"),
    (["train-throughput", "--name", "/tmp/x"], "error: the run log name must be a plain file name"),
    (["train-throughput", "--name", ""], "error: the run log name must be a plain file name"),
    (["train-throughput", "--name", "x.json"], "error: give the run log name without '.json' (it is added)"),
    (["train-throughput", "--models", "wf-cifar", "wf-cifar"], "error: models must be different names"),
    (["scaling", "--sides", "0"], "argument --sides: expected an int >= 1, got 0"),
    (["scaling", "--sides", "8"], "error: the scaling benchmark needs at least two different image sides, got [8]"),
    (["scaling", "--sides", "8", "8"], "needs at least two different image sides"),
    (["scaling", "--sides", "8", "9"], "error: image sides must be multiples of wf-cifar's patch size 2"),
    (["scaling", "--batch", "-1"], "argument --batch: expected an int >= 1, got -1"),
    (["scaling", "--repeats", "0"], "argument --repeats: expected an int >= 1, got 0"),
    (["scaling", "--name", "a/b"], "error: the run log name must be a plain file name"),
    (["scaling", "--device", "foo"], "error: unknown device 'foo'"),
]


TRAIN_CASES = [
    (["--device", "foo"], "error: unknown device 'foo': expected 'cpu', 'cuda' or 'cuda:<index>'"),
    (["--override", "img_size=abc"], "error: img_size must be an int >= 1, got 'abc'"),
    (["--checkpoint-dir", "{file}/sub"], "is not writable"),
    (["--lr", "inf"], "error: lr must be a number in (0, 1e6], got inf"),
    (["--weight-decay", "inf"], "error: weight_decay must be a finite number >= 0, got inf"),
    (["--mixup", "inf"], "error: the mixup alpha must be a number in [0, 100] (0: off), got inf"),
    (["--cutmix", "1e308"], "error: the cutmix alpha must be a number in [0, 100]"),
    (["--seed", "99999999999"], "error: seed must be an int in [0, 2**32), got 99999999999"),
    (["--label-smoothing", "1"], "error: label_smoothing must be in [0, 1), got 1.0"),
]


@pytest.mark.parametrize(("argv", "words"), TRAIN_CASES, ids=[" ".join(a) for a, _ in TRAIN_CASES])
def test_train_command_line(argv, words, tmp_path, runs, capsys):
    (tmp_path / "file").write_text("")
    argv = [a.format(file=tmp_path / "file") for a in argv]
    code, err = _cli(train.main, ["--preset", "quick-cpu", "--run-name", "x", "--no-progress", *argv], capsys)
    _assert_one_error_line(code, err, words)
    assert not any(runs.iterdir())  # refused before anything was written


def _assert_one_error_line(code, err, words):
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    assert words in lines[0]


@pytest.mark.parametrize(("argv", "words"), BENCH_CASES)
def test_bench_command_line(runs, capsys, argv, words):
    code, err = _cli(bench.main, [*argv, "--device", "cpu"] if "--device" not in argv else argv, capsys)
    _assert_one_error_line(code, err, words)
    assert not list(runs.iterdir())


@NO_CUDA
@pytest.mark.parametrize("command", ["train-throughput", "scaling"])
def test_bench_cuda_without_cuda(runs, capsys, command):
    _assert_one_error_line(*_cli(bench.main, [command, "--device", "cuda"], capsys), "CUDA is not available")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--threads", "0"], "argument --threads: expected an int >= 1, got 0"),
        (["--device", "foo"], "error: unknown device 'foo'"),
        (["--name", "../x"], "error: the run log name must be a plain file name"),
    ],
)
def test_dwconv_bench_command_line(runs, capsys, argv, words):
    _assert_one_error_line(*_cli(bench.main, ["dwconv", *argv], capsys), words)


# ------------------------------------------------------------------------------------------------- run logs kept
@pytest.mark.parametrize(
    ("main", "argv", "log"),
    [
        (bench.main, ["train-throughput", "--device", "cpu"], "bench-train-throughput-cpu"),
        (bench.main, ["scaling", "--device", "cpu"], "bench-scaling-cpu"),
        (bench.main, ["scaling", "--device", "cpu", "--name", "mine"], "mine"),
        (bench.main, ["dwconv", "--device", "cpu"], "bench-dwconv-cpu"),
    ],
)
def test_benchmarks_refuse_to_overwrite_a_run_log(runs, capsys, main, argv, log):
    path = runs / f"{log}.json"
    path.write_text('{"committed": true}\n')
    code, err = _cli(main, argv, capsys)
    _assert_one_error_line(code, err, f"the run log {path} already exists; pass --overwrite")
    assert json.loads(path.read_text()) == {"committed": True}


def test_overwrite_replaces_the_run_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(config, "runs_dir", lambda: tmp_path)
    path = tmp_path / "bench-train-throughput-cpu.json"
    path.write_text('{"committed": true}\n')
    argv = ["train-throughput", "--device", "cpu", "--models", "wf-cifar-quick", "--batch", "2", "--steps", "1",
            "--warmup", "0"]
    assert bench.main(argv) == 2
    assert bench.main([*argv, "--overwrite"]) == 0
    log = json.loads(path.read_text())
    assert log["batch"] == 2 and log["steps"] == 1 and set(log["results"]) == {"wf-cifar-quick"}


# ------------------------------------------------------------------------------------------------- data
def _image_folder(root, per_class=2):
    """A tiny CIFAR-10-shaped image folder (PNG; image i of class c filled with 10 * c + i)."""
    for split in data.SPLITS:
        for c, name in enumerate(data.CLASSES):
            folder = root / data.IMAGE_FOLDER / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                Image.new("RGB", (32, 32), (10 * c + i,) * 3).save(folder / f"{i:04d}.png")
    return root


@pytest.mark.parametrize("per_class", [True, 2.5, "2", 0, -1])
def test_per_class_must_be_a_positive_int(tmp_path, per_class):
    with pytest.raises(ValueError, match=r"per_class must be an int >= 1, got "):
        data.cifar10("test", root=tmp_path, per_class=per_class)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: data.cifar10("val"), "split must be one of ('train', 'test'), got 'val'"),
        (lambda: data.random_crop(torch.zeros(2, 3, 8, 8), -1), "padding must be an int >= 0, got -1"),
        (lambda: data.DeviceLoader(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), 2,
                                   train=True, device="cpu", crop_padding=-2),
         "crop_padding must be an int >= 0, got -2"),
        (lambda: data.DeviceLoader(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long), True,
                                   train=True, device="cpu"), "batch_size must be an int >= 1, got True"),
    ],
)
def test_data_arguments(call, words):
    with pytest.raises(ValueError) as error:
        call()
    assert words in str(error.value)


LABELS = torch.arange(4) % 2
LABEL_CASES = [
    (LABELS.float(), {}, "labels must be an int64 tensor of class indices >= 0, one per image (4); got dtype "
                         "torch.float32 (convert with .long())"),
    (LABELS.int(), {}, "got dtype torch.int32"),
    (LABELS.tolist(), {}, "one per image (4); got list"),
    (LABELS[:3], {}, "one per image (4); got shape (3,)"),
    (LABELS - 1, {}, "got 2 outside that range, from -1 to 0"),
    (torch.tensor([0, -100, 1, -100]), {}, "got 2 outside that range, from -100 to 1 (-100, PyTorch's ignore_index, "
                                           "is not accepted: every image needs its class)"),
    (LABELS + 1, {"num_classes": 2}, "class indices in [0, 2), one per image (4); got 2 outside that range, from 1 "
                                     "to 2 (the model has num_classes=2)"),
]


@pytest.mark.parametrize(("labels", "kwargs", "words"), LABEL_CASES)
def test_device_loader_checks_labels(labels, kwargs, words):
    with pytest.raises(ValueError) as error:
        data.DeviceLoader(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), labels, 2, train=True, device="cpu", **kwargs)
    assert words in str(error.value)


def test_corrupt_image_is_named(tmp_path):
    _image_folder(tmp_path, per_class=1)
    bad = tmp_path / data.IMAGE_FOLDER / "test" / "cat" / "0000.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    with pytest.raises(data.DataLayoutError, match=f"{bad} is not a readable image"):
        data.cifar10("test", root=tmp_path)


@pytest.mark.parametrize("content", [b"this is not a tar archive", b"\x1f\x8b\x08\x00truncated gzip"])
def test_non_tar_archive(tmp_path, capsys, content):
    archive = tmp_path / "cifar10-jpg.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(data.DataLayoutError, match="is not a readable tar archive"):
        data.extract_archive(archive, tmp_path / "root")
    assert not (tmp_path / "root" / data.IMAGE_FOLDER).exists()
    code, err = _cli(data.main, ["prepare", "--archive", str(archive), "--root", str(tmp_path / "root")], capsys)
    _assert_one_error_line(code, err, "is not a readable tar archive")


def test_unwritable_cache_fails_before_decoding(tmp_path, monkeypatch):
    _image_folder(tmp_path, per_class=1)
    (tmp_path / "cache").write_text("a file where the cache folder goes")  # unwritable, even for root

    def decode(*args):
        raise AssertionError("decoded before finding that the cache cannot be written")

    monkeypatch.setattr(data, "_decode_image_folder", decode)
    with pytest.raises(PermissionError, match="cannot write the cache folder .* set WF_DATA_DIR"):
        data.cifar10("test", root=tmp_path)


# -------------------------------------------------------------------------------------- the cache verifies itself
def _cache_of(root, split="test"):
    return root / "cache" / f"cifar10-{split}-image-folder.pt"


def test_changed_cache_contents_are_rebuilt(tmp_path):
    _image_folder(tmp_path)
    images, labels = data.cifar10("test", root=tmp_path)
    cache = torch.load(_cache_of(tmp_path), weights_only=True)
    cache["images"][0, 0, :10, :10] ^= 1  # 100 flipped bits, digest and fingerprint kept
    torch.save(cache, _cache_of(tmp_path))
    with pytest.warns(UserWarning, match="does not match the digest stored with it"):
        again, _ = data.cifar10("test", root=tmp_path)
    assert torch.equal(again, images)


def test_forged_cache_is_rebuilt(tmp_path):
    _image_folder(tmp_path)
    images, labels = data.cifar10("test", root=tmp_path)
    cache = torch.load(_cache_of(tmp_path), weights_only=True)
    cache["labels"] = torch.zeros_like(labels)  # every label 0, the original fingerprint, a matching digest
    cache["digest"] = data._digest(cache["images"], cache["labels"])
    torch.save(cache, _cache_of(tmp_path))
    with pytest.warns(UserWarning, match="is not of its source: its labels are not those of the image folder"):
        _, again = data.cifar10("test", root=tmp_path)
    assert torch.equal(again, labels)


def test_forged_torchvision_cache_is_recognised():
    balanced = torch.arange(10_000) % 10
    assert data._label_problem(balanced, "test", None) is None
    assert "class counts [10000, 0," in data._label_problem(torch.zeros(10_000, dtype=torch.int64), "test", None)
    assert "not all in 0..9" in data._label_problem(balanced - 1, "test", None)


def test_cache_of_another_version_is_rebuilt(tmp_path):
    _image_folder(tmp_path)
    data.cifar10("test", root=tmp_path)
    cache = torch.load(_cache_of(tmp_path), weights_only=True)
    torch.save({**cache, "version": 1}, _cache_of(tmp_path))
    with pytest.warns(UserWarning, match="made by another version of the course"):
        data.cifar10("test", root=tmp_path)


# ------------------------------------------------------------------------------------------------- first run
def test_tests_never_download():
    assert not config.downloads_allowed()  # tests/conftest.py


def _fake_fetch(calls):
    def fetch(folder):
        calls.append(folder)
        batches = folder / data.TORCHVISION_FOLDER
        batches.mkdir()
        for split in data.SPLITS:
            for path in data._torchvision_files(folder, split):
                path.write_bytes(b"batch")

    return fetch


def test_missing_data_is_downloaded_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("WF_NO_DOWNLOAD", "0")
    calls = []
    monkeypatch.setattr(data, "_fetch", _fake_fetch(calls))
    fake = torch.zeros(10_000, 3, 32, 32, dtype=torch.uint8), torch.arange(10_000) % 10
    monkeypatch.setattr(data, "_decode_torchvision", lambda root, split: fake)
    images, labels = data.cifar10("test", root=tmp_path)
    assert len(calls) == 1 and torch.equal(labels, fake[1])
    assert data.find_source(tmp_path) == "torchvision"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    data.cifar10("test", root=tmp_path)
    assert len(calls) == 1  # once


def test_offline_gives_one_message_saying_how_to_get_the_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WF_NO_DOWNLOAD", "0")

    def offline(folder):
        (folder / "cifar-10-python.tar.gz").write_bytes(b"partial")
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(data, "_fetch", offline)
    with pytest.raises(data.DataNotFoundError) as error:
        data.cifar10("train", root=tmp_path)
    message = str(error.value)
    assert "downloading it failed" in message and "Name or service not known" in message
    assert "make data" in message and "CIFAR10_ARCHIVE=" in message
    assert list(tmp_path.iterdir()) == []  # nothing half-downloaded left behind
    code, err = _cli(data.main, ["check", "--root", str(tmp_path)], capsys)
    _assert_one_error_line(code, err, f"error: CIFAR-10 was not found under {tmp_path}")
    assert "make data CIFAR10_ARCHIVE=" in err


def test_no_download_switch_is_obeyed(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(data, "_fetch", _fake_fetch(calls))
    with pytest.raises(data.DataNotFoundError, match="downloading is off \\(WF_NO_DOWNLOAD is set\\)"):
        data.cifar10("test", root=tmp_path)
    code, err = _cli(data.main, ["check", "--root", str(tmp_path)], capsys)
    _assert_one_error_line(code, err, "downloading is off")
    assert calls == []


def test_data_command_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WF_NO_DOWNLOAD", "sometimes")
    code, err = _cli(data.main, ["check", "--root", str(tmp_path)], capsys)
    _assert_one_error_line(code, err, "error: WF_NO_DOWNLOAD='sometimes' is not understood: use 1 (never download)")
    monkeypatch.setenv("WF_NO_DOWNLOAD", "1")
    (tmp_path / "a-file").write_text("")
    code, err = _cli(data.main, ["prepare", "--root", str(tmp_path / "a-file")], capsys)
    assert code == 2 and "argument --root: expected a data folder" in err and "Traceback" not in err


def test_check_passes_on_an_image_folder(tmp_path, capsys):
    _image_folder(tmp_path, per_class=1)
    assert data.main(["check", "--root", str(tmp_path)]) == 0
    assert "CIFAR-10 is ready" in capsys.readouterr().out and "20 images" in data.check(tmp_path)


def test_a_partial_torchvision_folder_is_not_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("WF_NO_DOWNLOAD", "0")
    (tmp_path / data.TORCHVISION_FOLDER).mkdir()
    (tmp_path / data.TORCHVISION_FOLDER / "data_batch_1").write_bytes(b"mine")
    with pytest.raises(data.DataLayoutError, match="lacks some of the CIFAR-10 batch files; remove it"):
        data.cifar10("test", root=tmp_path)
    assert (tmp_path / data.TORCHVISION_FOLDER / "data_batch_1").read_bytes() == b"mine"


# ------------------------------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("name", ["notes", "99_notes"])
def test_render_accepts_only_the_courses_chapters(tmp_path, monkeypatch, capsys, name):
    from wf_lessons import notebooks

    def no_kernel():
        raise AssertionError("a kernel was started for a file that is not a chapter")

    monkeypatch.setattr(notebooks, "_client_class", no_kernel)
    marker = tmp_path / "executed"
    py, nb = tmp_path / f"{name}.py", tmp_path / f"{name}.ipynb"
    py.write_text(f"# %%\nopen({str(marker)!r}, 'w').write('ran')\n")
    nb.write_text('{"the user\'s": "notebook"}')
    for given in (nb, py):
        code, err = _cli(notebooks.main, ["render", str(given)], capsys)
        _assert_one_error_line(code, err, f"error: {py} is not one of the course's chapters")
        with pytest.raises(ValueError, match="is not one of the course's chapters"):
            notebooks.render(given.with_suffix(".py"))
    assert not marker.exists() and nb.read_text() == '{"the user\'s": "notebook"}'
    assert notebooks.is_chapter(notebooks.chapter_sources()[0])


# ------------------------------------------------------------------------------- settings: types and ranges (issue 25)
SETTING_CASES = [
    ({"crop_padding": 1000}, "crop_padding must be an int in [0, 16] (at most half of the model's img_size 32, "
                             "so that every crop keeps a quarter of the image), got 1000"),
    ({"crop_padding": 17}, "crop_padding must be an int in [0, 16]"),
    ({"crop_padding": 4.0}, "crop_padding must be an int in [0, 16]"),
    ({"flip": "no"}, "flip must be True or False, got 'no' (a str)"),
    ({"tta_flip": "False"}, "tta_flip must be True or False, got 'False' (a str)"),
    ({"compile": "yes"}, "compile must be True or False, got 'yes' (a str)"),
    ({"flip": 1}, "flip must be True or False, got 1"),
    ({"progress": None}, "progress must be True or False, got None"),
    ({"save_checkpoints": "no"}, "save_checkpoints must be True or False"),
    ({"lr": "1e-3"}, "lr must be a number in (0, 1e6], got '1e-3' (a str)"),
    ({"lr": True}, "lr must be a number in (0, 1e6], got True"),
    ({"lr": float("nan")}, "lr must be a number in (0, 1e6], got nan"),
    ({"weight_decay": "0.05"}, "weight_decay must be a finite number >= 0, got '0.05' (a str)"),
    ({"label_smoothing": "0.1"}, "label_smoothing must be in [0, 1), got '0.1' (a str)"),
    ({"mix_prob": "1"}, "mix_prob must be in [0, 1], got '1' (a str)"),
    ({"time_limit_s": "60"}, "time_limit_s must be >= 0 (0: no limit), got '60' (a str)"),
    ({"randaugment_magnitude": 11}, "randaugment_magnitude must be a number in [0, 10], got 11"),
    ({"mixup": "0.8"}, "the mixup alpha must be a number in [0, 100] (0: off), got '0.8'"),
    ({"epochs": 2.0}, "epochs must be an int >= 1, got 2.0"),
    ({"batch_size": "8"}, "batch_size must be an int >= 1, got '8' (a str)"),
    ({"seed": True}, "seed must be an int in [0, 2**32), got True"),
    ({"seed": -1}, "seed must be an int in [0, 2**32), got -1"),
    ({"threads": -1}, "threads must be an int >= 0 or 'auto', got -1"),
    ({"preset": ["gpu"]}, "unknown preset ['gpu']; valid presets: quick-cpu"),
    ({"model": None, "preset": None, "model_overrides": {1: 2}}, "model_overrides must be a dict of keyword "
                                                                 "arguments (str keys), got key 1"),
    ({"model_overrides": {"num_classes": "abc"}}, "num_classes must be an int >= 1, got 'abc' (a str)"),
    ({"model_overrides": {"img_size": 2.5}}, "img_size must be an int >= 1, got 2.5"),
    ({"checkpoint_dir": ""}, "checkpoint_dir must be a folder (a non-empty str or Path; None: data/checkpoints), "
                             "got ''"),
    ({"checkpoint_dir": "  "}, "checkpoint_dir must be a folder"),
    ({"checkpoint_dir": 3}, "checkpoint_dir must be a folder (a non-empty str or Path; None: data/checkpoints), "
                            "got 3"),
    ({"device": 0}, "device must be a str such as 'cpu' or 'cuda' (None: cuda when available), got 0"),
    ({"run_name": "a\nb"}, "run_name must be a plain file name (no folder, '..', leading '.' or control "
                           "character), got 'a\\nb'"),
    ({"run_name": "tab\there"}, "control character"),
    ({"run_name": "x" * 201}, "run_name must be at most 200 bytes long (in UTF-8), so that every file named after "
                              "it fits the file-name limit; got 201 bytes"),
    ({"run_name": "é" * 101}, "got 202 bytes"),
]


@pytest.mark.parametrize(("kwargs", "words"), SETTING_CASES, ids=[repr(k)[:40] for k, _ in SETTING_CASES])
def test_every_setting_has_a_type_and_a_range(kwargs, words):
    with pytest.raises(TypeError if "model_overrides must" in words else ValueError) as error:
        train.TrainConfig(**{"model": "wf-cifar", **kwargs})
    assert words in str(error.value)


def test_the_longest_run_name_fits_every_file_named_after_it(tmp_path):
    from wf_lessons import atomic

    name = "x" * 200
    cfg = train.TrainConfig(model="wf-cifar", run_name=name, checkpoint_dir=tmp_path)
    with atomic.claim(atomic.claim_path(cfg.checkpoint_path()), "run"), atomic.atomic_path(cfg.checkpoint_path()) as t:
        t.write_text("")  # its claim, and the temporary copy of its checkpoint (the longest names) can be made


def test_the_settings_of_every_preset_are_valid():
    for preset in train.PRESETS:
        train.TrainConfig(preset=preset)


@pytest.mark.parametrize(("argv", "words"), [
    (["--crop-padding", "1000"], "error: crop_padding must be an int in [0, 16]"),  # wf-cifar-tiny: img_size 32
    (["--checkpoint-dir", ""], "error: checkpoint_dir must be a folder"),
    (["--run-name", "a\nb"], "error: run_name must be a plain file name (no folder, '..', leading '.' or control"),
    (["--run-name", "r" * 251], "error: run_name must be at most 200 bytes long"),
], ids=["crop-padding", "checkpoint-dir", "run-name-newline", "run-name-long"])
def test_train_command_line_checks_settings(argv, words, runs, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a claim or checkpoint written to the current folder would show here
    monkeypatch.setenv("WF_DATA_DIR", str(tmp_path / "no-data"))  # never trains, even unchecked
    code, err = _cli(train.main, ["--preset", "quick-cpu", "--run-name", "x", "--no-progress", *argv], capsys)
    _assert_one_error_line(code, err, words)
    assert not any(runs.iterdir()) and [p.name for p in tmp_path.iterdir()] == ["runs"]


def test_a_loader_refuses_a_crop_padding_larger_than_half_the_image():
    images, labels = torch.zeros(4, 3, 8, 8, dtype=torch.uint8), torch.zeros(4, dtype=torch.long)
    data.DeviceLoader(images, labels, 2, train=True, device="cpu", crop_padding=4)
    with pytest.raises(ValueError, match=r"crop_padding must be an int in \[0, 4\] \(at most half the image side 8, "
                                         r"so that every crop keeps a quarter of the image\), got 5"):
        data.DeviceLoader(images, labels, 2, train=True, device="cpu", crop_padding=5)
    data.DeviceLoader(images, labels, 2, train=False, device="cpu", crop_padding=5)  # no crops when evaluating


# ------------------------------------------------------------------------------- images of the wrong dtype or range
@pytest.mark.parametrize(("images", "words"), [
    (torch.rand(2, 3, 8, 8), "normalize expects uint8 images (..., 3, H, W) with values 0..255 as cifar10() returns "
                             "them; got torch.float32 images (already scaled or normalised?"),
    (torch.zeros(2, 3, 8, 8, dtype=torch.int64), "got torch.int64 images"),
    (torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "got shape (2, 1, 8, 8)"),
    ([[0]], "got list"),
])
def test_normalize_refuses_images_that_are_not_uint8(images, words):
    with pytest.raises(ValueError) as error:
        data.normalize(images)
    assert words in str(error.value)


@pytest.mark.parametrize("cls", [WeightFormer, ViT])
def test_a_model_given_uint8_images_names_data_normalize(cls):
    model = cls(**SMALL, **({"num_heads": 2} if cls is ViT else {}))
    images = torch.zeros(2, 3, 16, 16, dtype=torch.uint8)  # as cifar10() returns them
    with pytest.raises(ValueError, match=r"expected float images \(B, 3, H, W\), standardised by "
                                         r"wf_lessons.data.normalize; got torch.uint8 images: pass "
                                         r"data.normalize\(images\)"):
        model(images)
    assert model(data.normalize(images)).shape == (2, 10)


# ------------------------------------------------------------------------------- reference state dicts
def test_reference_state_dict_with_nan_weights_is_refused():
    model = WeightFormer(**SMALL)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["blocks.1.linear1.w"][0, 0] = float("nan")
    state["head.bias"][3] = float("inf")
    with pytest.raises(ValueError, match=r"the checkpoint holds NaN or infinite values \(2 tensors\): "
                                         r"blocks.1.linear1.w, head.bias; nothing was loaded"):
        load_reference_state_dict(model, state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(("overrides", "words"), [
    ({"linear_predictor": "linear"}, "linear_predictor='linear'"),
    ({"linear_predictor": "gap"}, "linear_predictor='gap'"),
    ({"linear_predictor": "nonlinear"}, "linear_predictor='nonlinear'"),
])
def test_reference_state_dict_is_refused_by_another_predictor_whose_keys_fit(overrides, words):
    reference = WeightFormer(**SMALL).state_dict()  # bilateral and adaptive, as the authors' checkpoints
    model = WeightFormer(**SMALL, **overrides)
    assert set(model.state_dict()) == set(reference)  # the keys and shapes fit: only the predictor differs
    with pytest.raises(ValueError) as error:
        load_reference_state_dict(model, reference)
    message = str(error.value)
    assert "the reference checkpoints are of the released predictors (linear_predictor='bilateral', " \
           "dwc_predictor='adaptive')" in message and words in message


# ------------------------------------------------------------------------------- dynamic linear layers
def test_dynamic_linear_overflow_is_documented():
    """The prediction is a second moment of the input: a finite input of about 1e22 overflows float32 and the
    forward pass returns NaN without a check (one would cost a device sync per layer and step). Documented in
    DynamicLinear's docstring; inside WeightFormer the layer sees LayerNorm outputs, and a non-finite loss stops
    training."""
    from wf_lessons.dynamic_linear import DynamicLinear, build_dynamic_linear

    layer, x = build_dynamic_linear(16, 64), torch.randn(2, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.isfinite(layer(x * 1e6, (4, 4))).all()
        assert not torch.isfinite(layer(x * 1e30, (4, 4))).all()
        assert torch.isfinite(build_dynamic_linear(16, 64, predictor="static")(x * 1e30, (4, 4))).all()
    assert "overflow" in DynamicLinear.__doc__ and "1e30" in DynamicLinear.__doc__


# ------------------------------------------------------------------------------- unclear errors made clear
def test_a_truncated_run_log_is_named(tmp_path, runs, capsys):
    from wf_lessons import runlog

    path = runs / "cut.json"
    path.write_text('{"run_name": "cut", "complete": tr')
    with pytest.raises(ValueError, match=f"run log {path} is not valid JSON \\(.*\\): it was cut short or changed"):
        runlog.read(path)
    with pytest.raises(ValueError, match=f"run log {runs / 'cut.json'} is not valid JSON"):
        runlog.read("cut")
    (runs / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=f"run log {runs / 'list.json'} holds a list, not a run log"):
        runlog.read("list")


def test_resume_names_a_truncated_run_log(tmp_path, runs, capsys):
    from test_train import _config, _data

    cfg = _config(tmp_path, run_name="done", epochs=1, write_log=True)
    train.train(cfg, _data())
    (runs / "done.json").write_text((runs / "done.json").read_text()[:50])
    with pytest.raises(ValueError, match=f"run log {runs / 'done.json'} is not valid JSON"):
        train.train(_config(tmp_path, run_name="done", epochs=1, write_log=True, resume=True), _data())


def test_ablate_list_names_a_truncated_run_log(runs, capsys):
    from wf_lessons import ablate

    name = ablate.config("study-cpu", "released", 0).run_name
    (runs / f"{name}.json").write_text('{"complete": true, "run_name": "')
    code, err = _cli(ablate.main, ["--preset", "study-cpu", "--list"], capsys)
    _assert_one_error_line(code, err, f"error: run log {runs / name}.json is not valid JSON")


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A copy of the first shipped model in a temporary folder, checked on 20 random test images."""
    import shutil

    from wf_lessons import pretrained

    name = pretrained.NAMES[0]
    folder = tmp_path / "pre"
    folder.mkdir()
    for suffix in (".pt", ".json"):
        shutil.copy(pretrained.FOLDER / f"{name}{suffix}", folder)
    monkeypatch.setattr(pretrained, "FOLDER", folder)
    monkeypatch.setattr(pretrained, "NAMES", (name,))
    images = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    monkeypatch.setattr("wf_lessons.data.cifar10", lambda split: (images, torch.arange(20) % 10))
    return folder / f"{name}.pt", folder / f"{name}.json"


def _damage_manifest(text):
    return lambda weights, meta: meta.write_text(text(json.loads(meta.read_text())))


MALFORMED = {
    "truncated manifest": (_damage_manifest(lambda m: json.dumps(m)[:40]), "manifest {meta} is not valid JSON"),
    "manifest of a list": (_damage_manifest(lambda m: "[1, 2]"), "manifest {meta} holds a list, not a manifest"),
    "manifest without a model": (_damage_manifest(lambda m: json.dumps({k: v for k, v in m.items() if k != "model"})),
                                 "manifest {meta} lacks model"),
    "manifest with a text accuracy": (_damage_manifest(lambda m: json.dumps(m | {"test_acc": "0.8"})),
                                      "manifest {meta} is damaged: test_acc must be a number in [0, 1], got '0.8'"),
    "manifest of an unknown model": (_damage_manifest(lambda m: json.dumps(m | {"model": "resnet"})),
                                     "manifest {meta} names a model that cannot be built (unknown model 'resnet'"),
    "weights of a list": (lambda weights, meta: torch.save([1, 2], weights),
                          "{weights} is not a state dict (a dict of names to tensors): it holds a list"),
    "weights with a non-tensor": (lambda weights, meta: torch.save({"head.bias": [0.0]}, weights),
                                  "{weights} is not a state dict (a dict of names to tensors): head.bias is a list"),
    "weights that are not a file of torch": (lambda weights, meta: weights.write_bytes(b"not torch"),
                                             "{weights} is not a readable weights file"),
    "NaN weights": (lambda weights, meta: torch.save({k: v.fill_(float("nan")) for k, v in
                                                      torch.load(weights, weights_only=True).items()}, weights),
                    "{weights} holds NaN or infinite weights"),
}


@pytest.mark.parametrize("damage", MALFORMED)
def test_pretrained_check_reports_malformed_files(shipped, capsys, damage):
    from wf_lessons import pretrained

    weights, meta = shipped
    change, words = MALFORMED[damage]
    change(weights, meta)
    code = pretrained.main(["check"])  # no exception escapes
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert code == 1 and "MISMATCH" in out and "Traceback" not in out, out
    assert words.format(weights=weights, meta=meta) in out, out


def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, runs, monkeypatch, capsys):
    """The second checkpoint write fails as on a full disk: one clear error (no torch traceback) naming the
    checkpoint, and the first checkpoint kept as it was (it loads and resumes)."""
    import errno

    from test_train import _config, _data

    from wf_lessons import atomic

    real_save, writes = torch.save, []

    def full_disk(obj, f, *args, **kwargs):
        if ".full.pt." in str(f):
            writes.append(f)
            if len(writes) == 2:
                Path(f).write_bytes(b"\x50\x4b half a checkpoint")
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(atomic.torch, "save", full_disk)
    checkpoint = tmp_path / "ckpt" / "full.pt"
    with pytest.raises(OSError) as error:
        train.train(_config(tmp_path, run_name="full", epochs=2, write_log=True), _data())
    message = str(error.value)
    assert f"could not write checkpoint {checkpoint} (No space left on device)" in message
    assert f"the previous checkpoint {checkpoint} is kept as it was" in message
    assert "--resume" in message
    assert train.load_checkpoint(checkpoint)["epoch"] == 1
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["full.pt"]  # no temporary file, no claim left
    # the command line: one error line, exit status 1, no traceback
    monkeypatch.setattr("wf_lessons.train.loop.cifar10", lambda split: _data()[0 if split == "train" else 1])
    monkeypatch.setattr("wf_lessons.train.loop.describe_source", lambda: "toy data")
    writes.clear()
    writes.append("the first write is done")
    argv = ["--model", "wf-cifar-quick", "--override", "img_size=16", "--override", "embed_dim=16", "--override",
            "depth=2", "--epochs", "2", "--batch-size", "16", "--run-name", "full", "--checkpoint-dir",
            str(tmp_path / "ckpt"), "--device", "cpu", "--threads", "1", "--no-progress", "--overwrite"]
    code, err = _cli(train.main, argv, capsys)
    assert code == 1 and "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and f"error: could not write checkpoint {checkpoint}" in lines[0], err
    assert train.load_checkpoint(checkpoint)["epoch"] == 1


def test_torch_save_failing_on_a_full_disk_is_an_oserror_naming_the_file(tmp_path, monkeypatch):
    from wf_lessons import atomic

    target = tmp_path / "kept.pt"
    atomic.torch_save({"old": torch.zeros(1)}, target)

    def fails(obj, f, *args, **kwargs):  # how torch's zip writer reports a write that failed
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(atomic.torch, "save", fails)
    with pytest.raises(OSError, match=f"could not write {target}: torch.save failed \\(.*unexpected pos.*\\); the "
                                      "disk may be full .* MB free"):
        atomic.torch_save({"new": torch.ones(1)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["old"], torch.zeros(1))
    assert [p.name for p in tmp_path.iterdir()] == ["kept.pt"]


def test_extracted_data_is_readable_by_group_and_others(tmp_path):
    """An archive of owner-only files (or extracted by a process with a strict temporary folder) gives a data
    folder that a shared machine's other users can read: modes follow the umask, as for any new file."""
    import io
    import os
    import stat
    import tarfile

    archive = tmp_path / "cifar10-jpg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in data.SPLITS:
            for name in data.CLASSES:
                info = tarfile.TarInfo(f"{split}/{name}")
                info.type, info.mode = tarfile.DIRTYPE, 0o700
                tar.addfile(info)
                image = io.BytesIO()
                Image.new("RGB", (32, 32)).save(image, format="PNG")
                info = tarfile.TarInfo(f"{split}/{name}/0000.png")
                info.size, info.mode = image.tell(), 0o600
                image.seek(0)
                tar.addfile(info, image)
    old = os.umask(0o022)
    try:
        target = data.extract_archive(archive, tmp_path / "root")
    finally:
        os.umask(old)
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [target, *target.rglob("*")]}
    assert modes[target] == 0o755 and modes[target / "train" / "cat"] == 0o755
    assert modes[target / "train" / "cat" / "0000.png"] == 0o644
    assert all(mode in (0o755, 0o644) for mode in modes.values())


@pytest.mark.parametrize("variable", ["WF_DATA_DIR", "WF_RUNS_DIR"])
def test_a_data_folder_variable_naming_a_file_is_refused(tmp_path, monkeypatch, capsys, variable):
    file = tmp_path / "notes.txt"
    file.write_text("not a folder")
    monkeypatch.setenv(variable, str(file))
    getter = config.data_dir if variable == "WF_DATA_DIR" else config.runs_dir
    with pytest.raises(ValueError, match=f"{variable}={str(file)!r} names a file, not a folder: set {variable} to "
                                         "a folder"):
        getter()
    if variable == "WF_DATA_DIR":
        code, err = _cli(data.main, ["check"], capsys)
        _assert_one_error_line(code, err, f"error: {variable}={str(file)!r} names a file, not a folder")
    assert file.read_text() == "not a folder"

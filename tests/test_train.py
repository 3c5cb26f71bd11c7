import json
import math

import pytest
import torch
from torch import nn

from wf_lessons import bench, train
from wf_lessons.data import DataNotFoundError, normalize
from wf_lessons.exercises import ch07
from wf_lessons.models import build_model
from wf_lessons.train import PRESETS, TrainConfig, evaluate, load_model

TINY = {"img_size": 16, "embed_dim": 16, "depth": 2}  # on wf-cifar-quick: patch 4, a 4×4 token grid
TINY_DEIT = {"img_size": 16, "embed_dim": 16, "depth": 2, "num_heads": 2}


def _data(n_train: int = 80, n_test: int = 40, seed: int = 0):
    """A learnable 10-class toy set: each class has its own colour, plus noise. uint8 (N, 3, 16, 16)."""
    g = torch.Generator().manual_seed(seed)
    colours = torch.randint(30, 226, (10, 3), generator=g)

    def split(n: int):
        labels = torch.arange(n) % 10
        noise = torch.randint(-30, 31, (n, 3, 16, 16), generator=g)
        return (colours[labels][:, :, None, None] + noise).clamp(0, 255).to(torch.uint8), labels

    return split(n_train), split(n_test)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """Run logs go to a temporary folder, never to the repository's data/runs."""
    folder = tmp_path / "runs"
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: folder)
    return folder


def _config(tmp_path, **kw) -> TrainConfig:
    base = {"model": "wf-cifar-quick", "model_overrides": TINY, "epochs": 2, "batch_size": 16, "lr": 3e-3,
            "warmup_epochs": 0.5, "checkpoint_dir": tmp_path / "ckpt", "device": "cpu", "progress": False,
            "write_log": False, "threads": 1}
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize(("model", "overrides"), [("wf-cifar-quick", TINY), ("deit-cifar-quick", TINY_DEIT)])
def test_a_few_steps_lower_the_loss(tmp_path, model, overrides):
    data = _data()
    log = train.train(_config(tmp_path, model=model, model_overrides=overrides, epochs=4, save_checkpoints=False,
                              lr=5e-3), data)
    losses = [e["train_loss"] for e in log["epochs"]]
    assert losses[-1] < losses[0] - 0.2, losses
    assert log["test_acc"] > 0.3  # chance is 0.1


def test_presets_resolve_and_explicit_values_win():
    quick = TrainConfig(preset="quick-cpu")
    assert quick.model == PRESETS["quick-cpu"]["model"] and quick.epochs == PRESETS["quick-cpu"]["epochs"]
    assert TrainConfig(preset="quick-cpu", epochs=7).epochs == 7
    gpu = TrainConfig(preset="gpu", model="deit-cifar")
    assert gpu.model == "deit-cifar" and gpu.compile is True and gpu.randaugment_ops == 2
    plain = TrainConfig()
    assert plain.epochs == train.DEFAULTS["epochs"] and plain.run_name == "train-wf-cifar-custom-seed0"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"model": "wf-cifar-huge"}, ValueError, "unknown model 'wf-cifar-huge'; valid models: wfm-t"),
        ({"preset": "tpu"}, ValueError,
         "unknown preset 'tpu'; valid presets: quick-cpu, cpu, study-cpu, controls-cpu, controls-short-cpu, "
         "controls-long-cpu, controls-grid16-cpu, study-gpu, gpu"),
        ({"batch_size": 0}, ValueError, "batch_size must be an int >= 1"),
        ({"lr": -1.0}, ValueError, r"lr must be a number in \(0, 1e6\]"),
        ({"lr": math.inf}, ValueError, r"lr must be a number in \(0, 1e6\], got inf"),
        ({"weight_decay": math.inf}, ValueError, "weight_decay must be a finite number >= 0, got inf"),
        ({"mixup": math.inf}, ValueError, r"the mixup alpha must be a number in \[0, 100\] \(0: off\), got inf"),
        ({"cutmix": 1e308}, ValueError, r"the cutmix alpha must be a number in \[0, 100\]"),
        ({"label_smoothing": 1.0}, ValueError, r"label_smoothing must be in \[0, 1\)"),
        ({"seed": 2**50}, ValueError, r"seed must be an int in \[0, 2\*\*32\)"),
        ({"ema_decay": 1.0}, ValueError, r"ema_decay must be in \[0, 1\)"),
        ({"warmup_epochs": -1.0}, ValueError, "warmup_epochs must be a finite number >= 0"),
        ({"erasing": 1.5}, ValueError, "erasing must be"),
        ({"run_name": "../x"}, ValueError, "plain file name"),
        ({"resume": True, "overwrite": True}, ValueError, "exclude each other"),
        ({"model_overrides": [1]}, TypeError, "model_overrides must be a dict"),
    ],
)
def test_bad_settings_fail_at_once(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_impossible_batch_size_and_missing_data_fail_before_training(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="batch_size 500 is larger than the 80 training images"):
        train.train(_config(tmp_path, batch_size=500), _data())
    monkeypatch.setenv("WF_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataNotFoundError, match="CIFAR-10 was not found"):
        train.train(_config(tmp_path))


def _interrupt_after(monkeypatch, calls: int) -> None:
    """Make the training step raise KeyboardInterrupt (as Ctrl-C would) on call number ``calls + 1``."""
    real, count = train.train_step, {"n": 0}

    def step(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train.loop, "train_step", step)


def test_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    data = _data()
    settings = {"epochs": 3, "drop_path": 0.2, "ema_decay": 0.9, "randaugment_ops": 1, "erasing": 0.5,
                "mixup": 0.8, "cutmix": 1.0, "mix_prob": 0.5}
    whole = train.train(_config(tmp_path, run_name="whole", **settings), data)
    with monkeypatch.context() as m:
        _interrupt_after(m, 5 + 3)  # 5 steps per epoch: Ctrl-C in the middle of epoch 2
        with pytest.raises(KeyboardInterrupt):
            train.train(_config(tmp_path, run_name="parts", **settings), data)
    last_good = train.load_checkpoint(tmp_path / "ckpt" / "parts.pt")
    assert last_good["epoch"] == 1  # the checkpoint of the last finished epoch is intact
    resumed = train.train(_config(tmp_path, run_name="parts", resume=True, **settings), data)
    assert resumed["resumed_from_epoch"] == 1
    assert [e["train_loss"] for e in resumed["epochs"]] == [e["train_loss"] for e in whole["epochs"]]
    assert [e["test_loss"] for e in resumed["epochs"]] == [e["test_loss"] for e in whole["epochs"]]
    a, b = load_model(tmp_path / "ckpt" / "whole.pt"), load_model(tmp_path / "ckpt" / "parts.pt")
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_a_failed_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    real_save, calls = torch.save, {"n": 0}

    def failing_save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second epoch's checkpoint: write half a file, then fail
            with open(f, "wb") as out:
                out.write(b"PK\x03\x04 half a checkpoint")
            raise OSError("disk full")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        train.train(_config(tmp_path, run_name="broken"), _data())
    ckpt = train.load_checkpoint(tmp_path / "ckpt" / "broken.pt")
    assert ckpt["epoch"] == 1 and len(ckpt["history"]) == 1
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["broken.pt"]  # no temporary file left
    assert isinstance(load_model(tmp_path / "ckpt" / "broken.pt"), nn.Module)


def test_nothing_is_overwritten_without_resume_or_overwrite(tmp_path, runs):
    data = _data()
    train.train(_config(tmp_path, run_name="mine", epochs=1, write_log=True), data)
    assert (runs / "mine.json").exists()
    with pytest.raises(FileExistsError, match="run 'mine' already exists"):
        train.train(_config(tmp_path, run_name="mine", epochs=1, write_log=True), data)
    log = train.train(_config(tmp_path, run_name="mine", epochs=1, write_log=True, overwrite=True), data)
    assert log["epochs_done"] == 1
    with pytest.raises(FileNotFoundError, match="cannot resume: there is no checkpoint"):
        train.train(_config(tmp_path, run_name="other", resume=True), data)


def test_a_checkpoint_of_another_model_or_recipe_is_refused(tmp_path):
    data = _data()
    train.train(_config(tmp_path, run_name="r", epochs=1), data)
    with pytest.raises(ValueError, match="checkpoint is of model 'wf-cifar-quick'"):
        train.train(_config(tmp_path, run_name="r", resume=True, epochs=1, model="deit-cifar-quick",
                            model_overrides=TINY_DEIT), data)
    with pytest.raises(ValueError, match=r"other settings \(lr: checkpoint 0.003, now 0.01; weight_decay: ") as error:
        train.train(_config(tmp_path, run_name="r", resume=True, epochs=1, lr=1e-2, weight_decay=0.1), data)
    assert "\n" not in str(error.value)  # one line, every difference named
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a readable checkpoint"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a wf_lessons.train checkpoint"):
        load_model(tmp_path / "other.pt")


def test_the_run_log_has_every_field(tmp_path, runs):
    log = train.train(_config(tmp_path, run_name="logged", write_log=True, tta_flip=True), _data())
    saved = json.loads((runs / "logged.json").read_text())
    for key in ("command", "git_commit", "device", "torch", "seed", "parameters", "flops_per_image", "epochs",
                "train_s", "wall_s", "test_acc", "test_acc_tta_flip", "config", "data", "started", "complete"):
        assert key in saved, key
    assert saved["test_acc"] == log["test_acc"] and saved["complete"] is True
    assert saved["parameters"] > 0 and saved["flops_per_image"] > 0 and saved["seed"] == 0
    assert saved["command"].startswith("python: wf_lessons.train.train(TrainConfig(model='wf-cifar-quick'")
    for epoch in saved["epochs"]:
        for key in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_s", "images_per_s"):
            assert math.isfinite(epoch[key]), key
    assert saved["wall_s"] >= saved["train_s"] > 0


def test_load_model_rebuilds_the_trained_model(tmp_path):
    data = _data()
    log = train.train(_config(tmp_path, run_name="m", epochs=1), data)
    model = load_model(tmp_path / "ckpt" / "m.pt")
    assert not model.training and model.blocks[0].dwc.in_channels == 16
    loader = [(normalize(data[1][0]), data[1][1])]
    assert evaluate(model, loader)["loss"] == pytest.approx(log["test_loss"], rel=1e-5)


def test_evaluate_and_flip_tta():
    class Left(nn.Module):  # predicts class 1 when the left half is brighter, else 0
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(()))

        def forward(self, x):
            d = x[..., :4].mean((1, 2, 3)) - x[..., 4:].mean((1, 2, 3))
            return torch.stack([-d, d], 1) + self.dummy

    x = torch.zeros(4, 3, 8, 8)
    x[:2, ..., :4] = 1  # brighter on the left: class 1
    x[2:, ..., 4:] = 1  # brighter on the right: class 0
    loader = [(x, torch.tensor([1, 1, 0, 0]))]
    assert evaluate(Left(), loader)["accuracy"] == 1.0
    assert evaluate(Left(), loader, tta_flip=True)["loss"] == pytest.approx(math.log(2))  # logits cancel


def test_warmup_cosine_and_weight_decay_groups():
    f = train.warmup_cosine(total_steps=100, warmup_steps=10, min_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0) and f(100) == pytest.approx(0.1)
    assert f(55) == pytest.approx(0.55)  # half-way down the cosine
    assert all(f(s) >= f(s + 1) for s in range(9, 100))
    model = build_model("deit-cifar-quick", **TINY_DEIT)
    decay, no_decay = train.build_optimizer(model, 1e-3, 0.05).param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim <= 1 or p is model.pos_embed
                                                             for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_cli_errors_and_summary_line(tmp_path, monkeypatch, capsys, runs):
    assert train.main(["--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert train.main(["--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err
    monkeypatch.setattr(train.loop, "cifar10", lambda split: _data()[0 if split == "train" else 1])
    args = ["--model", "wf-cifar-quick", "--override", "img_size=16", "--override", "embed_dim=16",
            "--override", "depth=2", "--epochs", "1", "--batch-size", "16", "--no-progress", "--device", "cpu",
            "--threads", "1",
            "--checkpoint-dir", str(tmp_path / "ckpt"), "--run-name", "cli"]
    assert train.main(args) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("test_acc=") and " epochs=1 wall_s=" in out[-1]
    log = json.loads((runs / "cli.json").read_text())
    assert log["command"].startswith("python -m wf_lessons.train --model wf-cifar-quick")
    assert log["model_overrides"] == {"img_size": 16, "embed_dim": 16, "depth": 2}
    assert train.main(args) == 2  # the same run again: refused
    assert "already exists" in capsys.readouterr().err


def test_train_throughput_benchmark_runs_side_by_side(tmp_path):
    measured = bench.train_throughput(["wf-cifar-quick", "deit-cifar-quick"], batch=4, steps=1, warmup=0,
                                      device=torch.device("cpu"), overrides={"img_size": 16, "embed_dim": 24,
                                                                             "depth": 2}, progress=False)
    rows = measured["results"]
    assert set(rows) == {"wf-cifar-quick", "deit-cifar-quick"} and all(r["images_per_s"] > 0 for r in rows.values())
    assert measured["throughput_ratio_first_over_second"] == pytest.approx(
        rows["wf-cifar-quick"]["images_per_s"] / rows["deit-cifar-quick"]["images_per_s"])


def test_gpu_preset_estimate_adds_up():
    est = train.gpu_preset_estimate("wf-cifar-tiny")
    assert est["epoch_s"] == pytest.approx(est["matmul_s_per_epoch"] + est["memory_s_per_epoch"])
    assert est["train_s"] == pytest.approx(est["epoch_s"] * PRESETS["gpu"]["epochs"])
    slower = train.gpu_preset_estimate("wf-cifar-tiny", {"memory_tb_per_s": 1.25, "matmul_tflop_per_s": 200.0})
    assert slower["epoch_s"] == pytest.approx(2 * est["epoch_s"])


def test_exercise_checkers_accept_right_and_reject_wrong_answers(capsys):
    steps = 50_000 // PRESETS["gpu"]["batch_size"]
    assert ch07.check_exercise(1, (steps * PRESETS["gpu"]["epochs"], round(PRESETS["gpu"]["warmup_epochs"] * steps)))
    assert not ch07.check_exercise(1, (50_000 / PRESETS["gpu"]["batch_size"] * PRESETS["gpu"]["epochs"], 0))
    assert "drops the last partial batch" in capsys.readouterr().out
    assert ch07.check_exercise(2, -(0.91 * math.log(0.91) + 0.09 * math.log(0.01)))
    assert not ch07.check_exercise(2, 0.0)

    def tta(model, images):
        return (model(images) + model(images.flip(-1))) / 2

    assert ch07.check_exercise(3, tta)
    assert not ch07.check_exercise(3, lambda model, images: model(images))
    assert "add those of the mirrored images" in capsys.readouterr().out
    assert not ch07.check_exercise(4, 1) and not ch07.check_exercise(4, None)
    assert ch07.check_exercise(5, (195, 195 * PRESETS["cpu"]["epochs"]))
    assert not ch07.check_exercise(5, (390, 390 * PRESETS["cpu"]["epochs"]))
    with pytest.raises(ValueError, match="exercises 1 to 7"):
        ch07.check_exercise(8, 0)

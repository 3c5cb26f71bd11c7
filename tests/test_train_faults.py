"""Faults and bad input around training: run-name claims, divergence, corrupted checkpoints, resume of a finished
run, machine settings chosen by measurement, the dry run."""

import json
import os
import subprocess
import sys

import pytest
import torch
from test_train import TINY, _config, _data

from wf_lessons import atomic, train
from wf_lessons.train import TrainConfig, TrainingDiverged, load_checkpoint, load_model, machine
from wf_lessons.train.checkpoint import CHECKPOINT_FORMAT, part_digests, state_digest


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: folder)
    return folder


def test_a_claimed_run_name_is_refused_at_once(tmp_path, runs):
    cfg = _config(tmp_path, run_name="busy", write_log=True)
    lock = runs / "busy.wf-claim"
    holder = subprocess.Popen([sys.executable, "-c", f"import time\nfrom wf_lessons import atomic\n"
                               f"with atomic.claim({str(lock)!r}, 'x'):\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(atomic.ClaimedError, match=f"run 'busy' is in use by another process \\(PID {holder.pid},"):
            train.train(cfg, _data())
        assert not (tmp_path / "ckpt" / "busy.pt").exists()
    finally:
        holder.kill()  # as kill -9: the kernel drops its lock, the file stays behind
        holder.wait()
    assert lock.read_text().startswith(atomic.CLAIM_MAGIC)
    train.train(cfg, _data())  # a claim file without a live holder is no obstacle
    assert not lock.exists() and (runs / "busy.json").exists()
    assert sorted(p.name for p in runs.iterdir()) == ["busy.json"]  # no temporary file left either


def test_a_run_without_a_log_claims_its_name_beside_its_checkpoint(tmp_path, runs):
    cfg = _config(tmp_path, run_name="quiet", epochs=1)  # write_log=False
    assert train.loop.claim_paths(cfg) == [tmp_path / "ckpt" / "quiet.wf-claim"]
    with atomic.claim(tmp_path / "ckpt" / "quiet.wf-claim", "run 'quiet'"):
        with pytest.raises(atomic.ClaimedError, match="run 'quiet' is in use by another process"):
            train.train(cfg, _data())
    train.train(cfg, _data())
    assert not runs.exists() or not any(runs.iterdir())  # nothing written under data/runs/
    with atomic.claim(tmp_path / "ckpt" / "quiet.wf-claim", "run 'quiet'"):  # a logged run shares the checkpoint
        with pytest.raises(atomic.ClaimedError, match="run 'quiet' is in use by another process"):
            train.train(_config(tmp_path, run_name="quiet", epochs=1, write_log=True, overwrite=True), _data())


def test_cli_refuses_a_claimed_run_with_exit_2(tmp_path, runs, capsys):
    with atomic.claim(runs / "held.wf-claim", "run 'held'"):
        assert train.main(["--run-name", "held", "--device", "cpu", "--no-progress"]) == 2
    assert "in use by another process" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["uv", "poetry"])
def test_a_users_lock_file_named_like_the_run_is_never_touched(tmp_path, runs, name):
    folders = [tmp_path / "ckpt", runs]
    for folder in folders:
        folder.mkdir(parents=True)
        (folder / f"{name}.lock").write_bytes(b"# the project's lock file\n\x00\xff")
        (folder / f"{name}.lock").chmod(0o444)
    cfg = _config(tmp_path, run_name=name, epochs=1, write_log=True)
    train.train(cfg, _data())
    with pytest.raises(FileExistsError, match="already exists"):  # refused after its checks
        train.train(cfg, _data())
    for folder in folders:
        assert (folder / f"{name}.lock").read_bytes() == b"# the project's lock file\n\x00\xff"
        assert not (folder / f"{name}.wf-claim").exists()


def test_a_symlinked_claim_path_is_refused_and_its_target_kept(tmp_path, runs):
    target, dangling = tmp_path / "precious.txt", tmp_path / "nowhere.txt"
    target.write_text("mine")
    (tmp_path / "ckpt").mkdir()
    for run, points_to in (("linked", target), ("dangling", dangling)):
        link = tmp_path / "ckpt" / f"{run}.wf-claim"
        link.symlink_to(points_to)
        with pytest.raises(FileExistsError, match=f"{link} .* is a symbolic link, not a claim of wf_lessons"):
            train.train(_config(tmp_path, run_name=run, epochs=1), _data())
        assert link.is_symlink() and os.readlink(link) == str(points_to)
    assert target.read_text() == "mine" and not dangling.exists()
    assert not (tmp_path / "ckpt" / "linked.pt").exists()


def test_a_foreign_file_with_the_claims_name_is_left_alone(tmp_path, runs):
    (tmp_path / "ckpt").mkdir()
    foreign = tmp_path / "ckpt" / "mine.wf-claim"
    foreign.write_text("not a claim")
    with pytest.raises(FileExistsError, match="exists and is not a claim of wf_lessons"):
        train.train(_config(tmp_path, run_name="mine", epochs=1), _data())
    assert foreign.read_text() == "not a claim"


def test_a_checkpoint_folder_that_is_the_runs_folder_is_claimed_once(tmp_path, runs):
    log = train.train(_config(tmp_path, run_name="same", epochs=1, write_log=True, checkpoint_dir=runs), _data())
    assert log["complete"] and sorted(p.name for p in runs.iterdir()) == ["same.json", "same.pt"]


def test_divergence_stops_marks_the_log_and_exits_non_zero(tmp_path, runs):
    with pytest.raises(TrainingDiverged, match="non-finite training loss in epoch 1"):
        train.train(_config(tmp_path, run_name="nan", lr=1e6, grad_clip=0.0, write_log=True), _data())
    log = json.loads((runs / "nan.json").read_text())
    assert log["diverged"] and not log["complete"] and log["test_acc"] is None and log["epochs_done"] == 0


def test_divergence_in_the_last_step_is_caught_by_the_test_loss(tmp_path, runs):
    # one step: the training loss is computed before the update that ruins the weights
    cfg = _config(tmp_path, run_name="late", lr=1e6, grad_clip=0.0, epochs=1, steps_per_epoch=1, warmup_epochs=0.0,
                  write_log=True)
    with pytest.raises(TrainingDiverged, match="non-finite test loss in epoch 1"):
        train.train(cfg, _data())
    log = json.loads((runs / "late.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in the log"))
    assert log["diverged"] and not log["complete"] and log["epochs_done"] == 0
    assert not (tmp_path / "ckpt" / "late.pt").exists()


def _first_moments(ckpt):
    return next(iter(ckpt["optimizer"]["state"].values()))


def _flip_a_byte(t):
    t.view(-1).view(torch.uint8)[3] ^= 0x10


#: Damage done to a checkpoint after it was written (its digests left as they were): each part is named.
TAMPERED = {
    "weights": lambda c: _flip_a_byte(next(iter(c["model"].values()))),
    "optimizer state": lambda c: _flip_a_byte(_first_moments(c)["exp_avg"]),
    "optimizer state ": lambda c: _first_moments(c)["exp_avg_sq"].mul_(4.0),  # scaled, still finite
    "scheduler state": lambda c: c["scheduler"].update(last_epoch=0, _step_count=1),  # reset
    "history": lambda c: c["history"][-1].update(test_acc=0.99),  # forged
    "epoch count": lambda c: c.update(epoch=2),
    "random-number generator state": lambda c: _flip_a_byte(c["rng"]["torch"]),
    "segments": lambda c: c["segments"][-1].update(bf16=True),
    "training time": lambda c: c.update(train_s=c["train_s"] * 2),
}


@pytest.fixture
def stopped(tmp_path):
    """A run stopped after epoch 1 of 2 (5 steps per epoch): its checkpoint's path and contents."""
    train.train(_config(tmp_path, run_name="d", time_limit_s=1e-6), _data())
    path = tmp_path / "ckpt" / "d.pt"
    return path, torch.load(path, weights_only=True)


@pytest.mark.parametrize("part", TAMPERED)
def test_every_part_a_resume_restores_is_verified(tmp_path, stopped, part):
    path, ckpt = stopped
    assert ckpt["version"] == 2 and set(ckpt["digests"]) == set(ckpt) - {"format", "version", "digests"}
    TAMPERED[part](ckpt)
    torch.save(ckpt, path)
    message = f"checkpoint {path} is corrupted: the digests written with it do not match its {part.strip()}$"
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="do not match its") as error:
        train.train(_config(tmp_path, run_name="d", resume=True), _data())
    assert str(path) in str(error.value)
    ckpt["extra"] = 1
    del ckpt["segments"]
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match=r"holds parts no digest was written for \('extra'\); it lacks parts it "
                                         r"was written with \(segments\)$"):
        load_checkpoint(path)


def _resign(ckpt, path):
    """Write ``ckpt`` with digests of its (damaged) contents: as a faulty writer would, not bit rot."""
    ckpt["digests"] = part_digests(ckpt)
    torch.save(ckpt, path)


def _damage(ckpt, part):
    if part == "nan moments":
        _first_moments(ckpt)["exp_avg_sq"].fill_(float("nan"))
    elif part == "python rng":
        del ckpt["rng"]["python"]
    elif part == "optimizer":
        ckpt["optimizer"]["param_groups"] = ckpt["optimizer"]["param_groups"][:1]
    elif part == "scheduler":
        del ckpt["scheduler"]["lr_lambdas"]
    elif part == "epoch":
        ckpt["epoch"] = "1"
    elif part == "epoch 2":
        ckpt["epoch"] = 2
    elif part == "reset scheduler":
        ckpt["scheduler"].update(last_epoch=0, _step_count=1)
    elif part == "optimizer steps":
        for entries in ckpt["optimizer"]["state"].values():
            entries["step"] = entries["step"] * 2
    elif part == "short history":
        ckpt["history"] = []
    elif part == "steps per epoch":
        ckpt["steps_per_epoch"] = 4


@pytest.mark.parametrize(("part", "message"), [
    ("nan moments", r"non-finite weights or optimizer state \(in optimizer 0 exp_avg_sq\)"),
    ("python rng", r"cannot be resumed: its random-number generator state is damaged \(KeyError: 'python'\)"),
    ("optimizer", "cannot be resumed: its optimizer state is damaged"),
    ("scheduler", "cannot be resumed: its scheduler state is damaged"),
    ("epoch", "is corrupted: its epoch count is '1', not an int >= 0"),
    ("epoch 2", r"its parts disagree \(the history holds epochs \[1\] but the epoch count is 2; the scheduler has "
                r"taken 5 steps, not 2 epochs x 5 steps; the last segment ends at epoch 1, not 2\)"),
    ("reset scheduler", r"its parts disagree \(the scheduler has taken 0 steps, not 1 epochs x 5 steps; the "
                        r"optimizer has taken 5 steps but the scheduler 0\)"),
    ("optimizer steps", r"its parts disagree \(the optimizer has taken 10 steps but the scheduler 5\)"),
    ("short history", r"its parts disagree \(the history holds epochs \[\] but the epoch count is 1\)"),
    ("steps per epoch", r"its parts disagree \(the scheduler has taken 5 steps, not 1 epochs x 4 steps\)"),
])
def test_damaged_training_state_is_refused_on_resume(tmp_path, stopped, part, message):
    path, ckpt = stopped
    _damage(ckpt, part)
    _resign(ckpt, path)
    with pytest.raises(ValueError, match=message) as error:
        train.train(_config(tmp_path, run_name="d", resume=True), _data())
    assert str(path) in str(error.value)


def _as_version_1(ckpt):
    """A checkpoint as format version 1 wrote it: a digest of its weights only."""
    del ckpt["digests"], ckpt["steps_per_epoch"]
    ckpt["version"] = 1
    ckpt["digest"] = state_digest(ckpt["model"])
    return ckpt


def test_a_version_1_checkpoint_loads_and_resumes_with_a_warning(tmp_path, stopped):
    path, ckpt = stopped
    torch.save(_as_version_1(ckpt), path)
    load_model(path)
    with pytest.warns(UserWarning, match="format version 1: its weights are verified, but its optimizer"):
        log = train.train(_config(tmp_path, run_name="d", resume=True), _data())
    assert log["complete"] and load_checkpoint(path)["version"] == 2  # written again in the new format
    written = path.read_bytes()
    for damage, message in (("epoch 2", "its parts disagree"), ("weights", "do not match the digest")):
        path.write_bytes(written)
        ckpt = _as_version_1(torch.load(path, weights_only=True) | {"epoch": 1, "history": log["epochs"][:1]})
        ckpt["segments"][-1]["to_epoch"] = 1
        ckpt["scheduler"].update(last_epoch=5, _step_count=6)
        for entries in ckpt["optimizer"]["state"].values():
            entries["step"].fill_(5)
        load_checkpoint(_save(ckpt, path))
        if damage == "weights":
            _flip_a_byte(next(iter(ckpt["model"].values())))
        else:
            _damage(ckpt, damage)
        with pytest.raises(ValueError, match=message):
            load_checkpoint(_save(ckpt, path))


def _save(ckpt, path):
    torch.save(ckpt, path)
    return path


def test_corrupted_checkpoints_are_refused(tmp_path):
    train.train(_config(tmp_path, run_name="c", epochs=1), _data())
    path = tmp_path / "ckpt" / "c.pt"
    ckpt = torch.load(path, weights_only=True)
    name = next(iter(ckpt["model"]))
    ckpt["model"][name] = ckpt["model"][name] + 1e37  # bit rot: weights no longer match the digest
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="corrupted: the digests written with it do not match its weights"):
        load_model(path)
    with pytest.raises(ValueError, match="corrupted"):
        train.train(_config(tmp_path, run_name="c", epochs=2, resume=True), _data())
    del ckpt["digests"]
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="corrupted: it has no digests"):
        load_checkpoint(path)
    ckpt["version"] = 1  # format version 1 without a digest: only finiteness and agreement are checked
    ckpt["model"][name] = ckpt["model"][name] * float("nan")
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="non-finite weights"):
        load_checkpoint(path)
    torch.save({"format": CHECKPOINT_FORMAT, "model": {}}, path)
    with pytest.raises(ValueError, match="incomplete: it lacks model_name"):
        load_checkpoint(path)


def test_checkpoint_of_another_shape_names_the_keys(tmp_path):
    train.train(_config(tmp_path, run_name="s", epochs=1), _data())
    ckpt = load_checkpoint(tmp_path / "ckpt" / "s.pt")
    from wf_lessons.models import build_model
    from wf_lessons.train.checkpoint import load_weights

    wider = build_model("wf-cifar-quick", **(TINY | {"embed_dim": 32}))
    with pytest.raises(ValueError, match=r"does not fit WeightFormer: .*\(16,\) where the model has \(32,\)"):
        load_weights(wider, ckpt["model"], "checkpoint s.pt")


def test_resume_of_a_complete_run_changes_nothing(tmp_path, runs, capsys):
    cfg = _config(tmp_path, run_name="done", epochs=1, write_log=True)
    first = train.train(cfg, _data())
    before = (runs / "done.json").read_text()
    again = train.train(_config(tmp_path, run_name="done", epochs=1, write_log=True, resume=True, progress=True),
                        _data())
    assert "already complete" in capsys.readouterr().out
    assert (runs / "done.json").read_text() == before and again["started"] == first["started"]


def test_resume_records_each_segment_with_its_settings(tmp_path):
    whole = train.train(_config(tmp_path, run_name="seg", epochs=2, time_limit_s=1e-9), _data())
    assert whole["epochs_done"] == 1 and len(whole["segments"]) == 1
    resumed = train.train(_config(tmp_path, run_name="seg", epochs=2, resume=True, bf16=True), _data())
    first, second = resumed["segments"]
    assert (first["from_epoch"], first["to_epoch"], first["bf16"]) == (0, 1, False)
    assert (second["from_epoch"], second["to_epoch"], second["bf16"]) == (1, 2, True)


def test_auto_settings_are_measured_recorded_and_kept_on_resume(tmp_path, monkeypatch):
    calls = []

    def fake(model, overrides, batch, side, bf16, n_threads, steps=3):
        calls.append((bf16, n_threads))
        return 1.0 if bf16 else 2.0  # bf16 "faster" here

    monkeypatch.setattr(machine, "measure_step_s", fake)
    log = train.train(_config(tmp_path, run_name="auto", epochs=2, bf16="auto", time_limit_s=1e-9), _data())
    assert log["bf16"] is True and sorted(calls) == [(False, 1), (True, 1)]
    assert log["segments"][0]["measured_step_s"] == {"fp32, 1 thread": 2.0, "bf16, 1 thread": 1.0}
    calls.clear()
    resumed = train.train(_config(tmp_path, run_name="auto", epochs=2, bf16="auto", resume=True), _data())
    assert calls == [] and resumed["segments"][1]["bf16"] is True  # the resumed segment keeps the choice


def test_measurement_restores_the_random_state():
    state = torch.get_rng_state()
    machine.measure_step_s("wf-cifar-quick", TINY, batch=4, side=16, bf16=False, n_threads=1, steps=1)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"device": "cuda"}, "CUDA is not available"),
    ({"model_overrides": TINY | {"num_classes": 5}}, r"training labels must be an int64 tensor of class indices in "
                                                     r"\[0, 5\), one per image \(80\); got 40 outside that range, "
                                                     r"from 0 to 9 \(the model has num_classes=5\)"),
    ({"bf16": "yes"}, "bf16 must be True, False, None"),
])
def test_bad_settings_say_what_was_expected(tmp_path, kwargs, message):
    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match=message):
        train.train(_config(tmp_path, **kwargs), _data())


def _with_labels(split, labels):
    (train_x, train_y), test = _data()
    if split == "training":
        return (train_x, labels(train_y)), test
    return (train_x, train_y), (test[0], labels(test[1]))


@pytest.mark.parametrize(("split", "labels", "words"), [
    ("training", lambda y: torch.where(y < 5, y, -100), "training labels must be an int64 tensor of class indices in "
                                                        "[0, 10), one per image (80); got 40 outside that range, from "
                                                        "-100 to 4 (-100, PyTorch's ignore_index, is not accepted"),
    ("test", lambda y: torch.full_like(y, -100), "test labels must be an int64 tensor of class indices in [0, 10), "
                                                 "one per image (40); got 40 outside that range, from -100 to -100"),
    ("training", lambda y: y - 1, "got 8 outside that range, from -1 to 8"),
    ("training", lambda y: y.float(), "got dtype torch.float32 (convert with .long())"),
    ("test", lambda y: y.int(), "test labels must be an int64 tensor of class indices in [0, 10), one per image "
                                "(40); got dtype torch.int32"),
    ("training", lambda y: y[:-1], "one per image (80); got shape (79,)"),
    ("test", lambda y: y.tolist(), "got list"),
])
def test_labels_are_checked_once_before_anything_is_claimed_or_written(tmp_path, runs, split, labels, words):
    with pytest.raises(ValueError) as error:
        train.train(_config(tmp_path, run_name="labels", write_log=True), _with_labels(split, labels))
    assert words in str(error.value)
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").iterdir())
    assert not runs.exists() or not any(runs.iterdir())


def test_an_unwritable_checkpoint_folder_is_found_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="checkpoint_dir .* is not writable"):
        train.train(_config(tmp_path, checkpoint_dir=blocker / "sub"), _data())


def test_presets_validate_machine_settings():
    assert TrainConfig(preset="quick-cpu").bf16 == "auto" and TrainConfig(preset="quick-cpu").threads == "auto"
    with pytest.raises(ValueError, match="threads must be an int >= 0"):
        TrainConfig(threads="two")


@pytest.mark.slow
def test_gpu_preset_dry_run_on_cpu(capsys, monkeypatch):
    """The gpu preset's whole path (compile, bf16, RandAugment, erasing, mixup/CutMix, drop-path) at toy size."""
    monkeypatch.setattr("wf_lessons.train.loop.cifar10", lambda split: _data(n_train=320, n_test=40)[
        0 if split == "train" else 1])
    assert train.main(["--preset", "gpu", "--dry-run", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "stop and resume: ok" in out and "torch.compile" in out and "mixup 0.8" in out

"""The GPU path, exercised on a CPU: precision by what the device can do (capability queries patched to stand for a
T4 and an A100/H100), the float16 step with its gradient scaler (CPU autocast), a compiler that fails, a first step
that runs out of memory, and resume with the scaler's state."""

import warnings

import pytest
import torch
from test_train import TINY, _config, _data
from torch import nn

from wf_lessons import headline, train
from wf_lessons.train import TrainingDiverged, load_checkpoint, loop, machine
from wf_lessons.train.fallback import BatchTooLarge, CompileFallback, is_out_of_memory, largest_fitting_batch
from wf_lessons.train.steps import train_step

GPUS = {"t4": ((7, 5), "Tesla T4"), "v100": ((7, 0), "Tesla V100-SXM2-16GB"), "a100": ((8, 0), "NVIDIA A100-SXM4-40GB"),
        "h100": ((9, 0), "NVIDIA H100 80GB HBM3"), "p100": ((6, 0), "Tesla P100-PCIE-16GB")}


@pytest.fixture(autouse=True)
def runs(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: folder)
    return folder


def _pretend(monkeypatch, gpu: str) -> torch.device:
    """Patch the capability queries so that ``cuda`` reads as ``gpu`` (no CUDA is touched)."""
    capability, name = GPUS[gpu]
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    return torch.device("cuda")


# ------------------------------------------------------------------------------------------------ precision
@pytest.mark.parametrize(("gpu", "precision", "words"), [
    ("t4", "fp16", "Tesla T4 (compute capability 7.5) has no bfloat16 tensor cores (before Ampere): float16 "
                   "autocast with a gradient scaler"),
    ("v100", "fp16", "compute capability 7.0"),
    ("a100", "bf16", "NVIDIA A100-SXM4-40GB (compute capability 8.0) has bfloat16 tensor cores (Ampere or newer)"),
    ("h100", "bf16", "compute capability 9.0"),
])
def test_the_device_chooses_the_precision(monkeypatch, gpu, precision, words):
    device = _pretend(monkeypatch, gpu)
    for requested in (None, "auto"):
        choice = machine.choose_precision(device, requested)
        assert choice["precision"] == precision and words in choice["reason"]
    assert machine.choose_precision(device, "fp32") == {"precision": "fp32", "reason": "asked for (fp32)"}


def test_a_training_run_on_a_t4_takes_fp16_with_a_scaler_and_on_an_h100_bf16(tmp_path, monkeypatch):
    for gpu, precision, scaler in (("t4", "fp16", torch.amp.GradScaler), ("h100", "bf16", type(None))):
        device = _pretend(monkeypatch, gpu)
        settings = loop._machine_settings(_config(tmp_path), device, None, side=16)
        assert (settings["precision"], settings["bf16"]) == (precision, precision == "bf16")
        assert GPUS[gpu][1] in settings["precision_reason"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "CUDA is not available": the scaler is only looked at
            assert isinstance(machine.make_scaler(device, settings["precision"]), scaler)


def test_bf16_asked_for_on_a_t4_is_kept_with_a_warning(monkeypatch):
    device = _pretend(monkeypatch, "t4")
    with pytest.warns(UserWarning, match="Tesla T4 .* has no bfloat16 tensor cores, is slow; precision='fp16'"):
        choice = machine.choose_precision(device, "bf16")
    assert choice["precision"] == "bf16"


def test_on_a_cpu_the_default_is_fp32_and_bad_names_are_refused():
    assert machine.choose_precision(torch.device("cpu"), None)["precision"] == "fp32"
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp16, fp32"):
        machine.choose_precision(torch.device("cpu"), "half")


def test_the_old_bf16_flag_is_still_accepted():
    assert train.TrainConfig(bf16=True).precision == "bf16" and train.TrainConfig(bf16=False).precision == "fp32"
    assert train.TrainConfig(precision="fp16").bf16 is False and train.TrainConfig(precision="bf16").bf16 is True
    assert train.TrainConfig(preset="controls-cpu", bf16=False).precision == "fp32"  # the call wins over the preset
    assert train.config_from_args(["--no-bf16"]).precision == "fp32"
    assert train.config_from_args(["--precision", "fp16"]).precision == "fp16"
    with pytest.raises(ValueError, match="bf16=True .* contradicts precision='fp32'"):
        train.TrainConfig(bf16=True, precision="fp32")
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp16, fp32 or None"):
        train.TrainConfig(precision="float16")


# ---------------------------------------------------------------------------------------- float16 + scaler
class _Overflow(nn.Module):
    """A tiny classifier whose output becomes infinite on the training calls listed in ``at`` (0-based)."""

    def __init__(self, at=()):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(12, 10))
        self.at, self.calls = set(at), 0

    def forward(self, x):
        out = self.net(x)
        self.calls += 1
        return out * float("inf") if self.calls - 1 in self.at else out


def _batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 2, 2, generator=g), torch.randint(0, 10, (8,), generator=g)


def test_fp16_step_with_a_gradient_scaler_on_cpu_autocast():
    torch.manual_seed(0)
    model = _Overflow()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu")
    before = [p.detach().clone() for p in model.parameters()]
    loss, logits = train_step(model, optimizer, *_batch(), grad_clip=1.0, precision="fp16", scaler=scaler)
    assert logits.dtype == torch.float16  # the forward pass ran under float16 autocast
    assert torch.isfinite(loss) and scaler.get_scale() == 65536.0
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_an_overflowing_fp16_step_is_skipped_and_the_scale_halved():
    torch.manual_seed(0)
    model = _Overflow(at={0})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu")
    before = [p.detach().clone() for p in model.parameters()]
    loss, _ = train_step(model, optimizer, *_batch(), grad_clip=1.0, precision="fp16", scaler=scaler)
    assert not torch.isfinite(loss)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # skipped
    assert scaler.get_scale() == 32768.0


def _overflow_at(monkeypatch, calls):
    """Make the run's model produce infinite logits on the given training-mode forward calls (0-based; None: all)."""
    count = {"n": 0}
    original = loop.build_model

    def build(name, **kw):
        model = original(name, **kw)

        def hook(module, args, output):
            if not module.training:
                return output
            count["n"] += 1
            return output * float("inf") if calls is None or count["n"] - 1 in calls else output

        model.register_forward_hook(hook)
        return model

    monkeypatch.setattr(loop, "build_model", build)


def test_an_fp16_overflow_is_skipped_not_diverged_and_resume_keeps_the_scale(tmp_path, monkeypatch):
    _overflow_at(monkeypatch, {1})
    first = train.train(_config(tmp_path, run_name="f16", precision="fp16", time_limit_s=1e-9), _data())
    row = first["epochs"][0]
    assert first["diverged"] is None and first["precision"] == "fp16" and first["bf16"] is False
    assert row["nonfinite_steps"] == 1 and row["loss_scale"] == 32768.0
    assert load_checkpoint(tmp_path / "ckpt" / "f16.pt")["scaler"]["scale"] == 32768.0
    resumed = train.train(_config(tmp_path, run_name="f16", resume=True), _data())  # precision kept: fp16
    assert resumed["complete"] and resumed["precision"] == "fp16"
    assert resumed["segments"][1]["precision_reason"] == "kept from the checkpoint (fp16)"
    assert resumed["epochs"][1]["loss_scale"] == 32768.0  # the scale went on from the checkpoint, not from 65536


def test_an_fp16_loss_that_stays_non_finite_at_a_settled_scale_is_divergence(tmp_path, monkeypatch):
    _overflow_at(monkeypatch, None)  # every step: the scaler backs off below 1 and the loss is still infinite
    with pytest.raises(TrainingDiverged, match="non-finite training loss in epoch 1"):
        train.train(_config(tmp_path, run_name="f16bad", precision="fp16", batch_size=4, write_log=True), _data())


def test_a_non_finite_fp32_loss_is_still_divergence_at_once(tmp_path, monkeypatch):
    _overflow_at(monkeypatch, {1})
    with pytest.raises(TrainingDiverged, match="non-finite training loss in epoch 1"):
        train.train(_config(tmp_path, run_name="f32bad"), _data())


# ------------------------------------------------------------------------------------------------ compile
def _broken_compile(monkeypatch):
    calls = []

    def compile_(model, *args, **kwargs):
        calls.append(model)

        class Broken(nn.Module):
            def forward(self, *a, **k):
                raise RuntimeError("InductorError: no working C++ compiler found\n(traceback ...)")

        return Broken()

    monkeypatch.setattr(torch, "compile", compile_)
    return calls


def test_a_failing_compiler_falls_back_to_eager_once_and_is_recorded(tmp_path, monkeypatch):
    eager = train.train(_config(tmp_path, run_name="eager", save_checkpoints=False), _data())
    calls = _broken_compile(monkeypatch)
    with pytest.warns(RuntimeWarning, match="torch.compile failed") as caught:
        log = train.train(_config(tmp_path, run_name="broken", compile=True, save_checkpoints=False), _data())
    assert len(calls) == 1 and len([w for w in caught if "torch.compile" in str(w.message)]) == 1
    assert log["compile"] == "failed (RuntimeError: InductorError: no working C++ compiler found)"
    assert log["segments"][0]["compile"] == log["compile"] and eager["compile"] == "off"
    # the failed attempt changed nothing: the run equals an eager one, loss for loss
    assert [e["train_loss"] for e in log["epochs"]] == [e["train_loss"] for e in eager["epochs"]]


def test_compile_is_not_tried_on_a_gpu_too_old_for_triton(monkeypatch):
    device = _pretend(monkeypatch, "p100")
    calls = _broken_compile(monkeypatch)
    with pytest.warns(RuntimeWarning, match="Tesla P100-PCIE-16GB has compute capability 6.0; Triton needs 7.0"):
        compiled = CompileFallback(nn.Linear(2, 2), True, device)
    assert calls == [] and compiled.status.startswith("failed (Tesla P100")


def test_an_error_that_eager_mode_raises_too_is_not_blamed_on_the_compiler(monkeypatch):
    _broken_compile(monkeypatch)
    compiled = CompileFallback(nn.Linear(2, 2), True)

    def bad_input(module):
        return module(torch.zeros(3))

    with pytest.raises(RuntimeError, match="mat1 and mat2|size mismatch|shapes cannot be multiplied"):
        compiled.run(bad_input)
    assert compiled.status == "on"


# -------------------------------------------------------------------------------------------- out of memory
def _oom_above(monkeypatch, limit):
    """Make every training step of more than ``limit`` images run out of memory, as a small GPU would."""
    tried = []
    original = loop.train_step

    def step(model, optimizer, images, *args, **kwargs):
        tried.append(images.shape[0])
        if images.shape[0] > limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory (injected: {images.shape[0]} > {limit})")
        return original(model, optimizer, images, *args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step)
    return tried


def test_a_first_step_out_of_memory_halves_an_automatic_batch_and_scales_the_lr(tmp_path, monkeypatch, capsys):
    tried = _oom_above(monkeypatch, 64)
    cfg = train.TrainConfig(model="wf-cifar-quick", model_overrides=TINY, epochs=1, steps_per_epoch=2, lr=4e-3,
                            device="cpu", threads=1, checkpoint_dir=tmp_path / "ckpt", write_log=False)
    assert cfg.batch_size == 256 and "batch_size" not in cfg.given_settings()  # the default, not set
    log = train.train(cfg, _data(n_train=320))
    assert tried[:3] == [256, 128, 64]  # the run's first step, then the search by halving
    assert log["complete"] and log["config"]["batch_size"] == 64 and log["config"]["lr"] == pytest.approx(1e-3)
    assert "batch 256 did not fit in memory" in log["segments"][0]["out_of_memory"]
    out = capsys.readouterr().out
    assert "batch 128 does not fit in memory: trying 64" in out and "learning rate 0.004 -> 0.001" in out


def test_a_first_step_out_of_memory_with_a_set_batch_stops_with_advice(tmp_path, monkeypatch):
    _oom_above(monkeypatch, 4)
    with pytest.raises(ValueError, match=r"batch 16 did not fit in memory .* batch 4 fits .* Not changed, because "
                                         r"batch_size was set: start the run with --batch-size 4 --lr 0\.00075"):
        train.train(_config(tmp_path, run_name="big"), _data())
    monkeypatch.setattr(loop, "cifar10", lambda split: _data()[0 if split == "train" else 1])
    assert train.main(["--model", "wf-cifar-quick", "--batch-size", "16", "--device", "cpu", "--no-progress",
                       "--override", "img_size=16", "--override", "embed_dim=16", "--override", "depth=2",
                       "--epochs", "1", "--no-log", "--no-checkpoint", "--steps-per-epoch", "1"]) == 2


def test_out_of_memory_later_than_the_first_step_is_not_hidden(tmp_path, monkeypatch):
    original, calls = loop.train_step, []

    def step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise torch.OutOfMemoryError("CUDA out of memory (injected at step 3)")
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", step)
    with pytest.raises(torch.OutOfMemoryError, match="injected at step 3"):
        train.train(_config(tmp_path, run_name="late"), _data())


def test_the_batch_search_is_shared_with_headline(monkeypatch):
    tried = []

    def throughput(models, batch, **kwargs):
        tried.append(batch)
        if batch > 128:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return {"results": {}, "batch": batch}

    monkeypatch.setattr("wf_lessons.bench.train_throughput", throughput)
    batch, measured = headline.measure(512)
    assert (batch, tried) == (128, [512, 256, 128]) and measured["batch"] == 128
    tried.clear()
    with pytest.raises(BatchTooLarge, match="out of memory at every batch tried \\(32\\)"):
        largest_fitting_batch(lambda b: throughput(None, 1024), 32, min_batch=32)
    with pytest.raises(KeyError):  # any other error propagates unchanged
        largest_fitting_batch(lambda b: {}["missing"], 8)
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 10 GB"))
    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


@pytest.mark.slow
def test_fp16_dry_run_of_the_gpu_preset_exercises_the_t4_path(monkeypatch, capsys):
    """The gpu preset's path in float16 with its scaler (what a T4 runs), at toy size on the CPU, compiled."""
    monkeypatch.setattr("wf_lessons.train.loop.cifar10", lambda split: _data(n_train=320, n_test=40)[
        0 if split == "train" else 1])
    monkeypatch.setattr(torch, "compile", lambda model, *a, **k: model)  # inductor on a CPU is slow; tested elsewhere
    assert train.main(["--preset", "gpu", "--dry-run", "--device", "cpu", "--precision", "fp16"]) == 0
    out = capsys.readouterr().out
    assert "fp16 autocast with a gradient scaler (saved and restored)" in out and "stop and resume: ok" in out

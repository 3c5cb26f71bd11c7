"""Training on CIFAR-10: one pipeline for WeightFormer and DeiT, so that their comparison is fair.

The recipe (chapter 06 explains every piece): the whole split on the device, augmented there with batched tensor
ops (random crop + flip from :mod:`wf_lessons.data`; RandAugment, random erasing, mixup/CutMix from
:mod:`wf_lessons.augment`, each switchable); cross-entropy with label smoothing; AdamW without weight decay on
norms, biases and other 1-D parameters; linear warm-up then cosine decay, per iteration; gradient clipping;
drop-path; optional EMA of the weights; bf16 autocast on GPU; optional ``torch.compile``; optional flip
test-time augmentation at evaluation.

Every epoch ends with an atomic checkpoint (``wf_lessons.atomic``: temporary file + rename), so Ctrl-C or a crash
leaves the last good one; ``resume=True`` continues a run exactly (model, optimizer, schedule, EMA, epoch and random
states are restored; on CPU the losses match an uninterrupted run bit for bit). Every run writes a JSON run log under
``data/runs/`` (:mod:`wf_lessons.runlog`) unless ``write_log=False``.

Python::

    from wf_lessons.train import TrainConfig, train, load_model
    log = train(TrainConfig(model="wf-cifar-tiny", preset="quick-cpu"))
    model = load_model("data/checkpoints/<run_name>.pt")

Command line (ends with one line ``test_acc=0.5612 epochs=... wall_s=...``)::

    python -m wf_lessons.train --preset quick-cpu --model wf-cifar-tiny --seed 0
    python -m wf_lessons.train --preset gpu --model deit-cifar --seed 1
    python -m wf_lessons.train ... --resume          # continue from the run's last checkpoint
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import os
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wf_lessons import atomic, runlog
from wf_lessons import config as wf_config
from wf_lessons.augment import BatchAugment
from wf_lessons.complexity import count_flops
from wf_lessons.data import CLASSES, DataNotFoundError, DeviceLoader, cifar10
from wf_lessons.exercises import check_callable, check_number, report
from wf_lessons.models import MODEL_NAMES, build_model, count_parameters

__all__ = [
    "DEFAULTS",
    "GPU_ASSUMED_RATES",
    "GPU_PRESET_REASONING",
    "PRESETS",
    "TrainConfig",
    "build_optimizer",
    "gpu_preset_estimate",
    "check_exercise",
    "config_from_args",
    "cpu_has_native_bf16",
    "evaluate",
    "load_checkpoint",
    "load_model",
    "main",
    "predict",
    "train",
    "train_step",
    "warmup_cosine",
]

CHECKPOINT_FORMAT = "wf-lessons-train-checkpoint"
CHECKPOINT_VERSION = 1

#: Values of every tunable setting when neither the call nor the preset gives one. ``0`` switches a feature off
#: (``grad_clip``, ``ema_decay``, ``erasing``, ``mixup``, ``cutmix``, ``time_limit_s``) or means "all"
#: (``train_per_class``, ``eval_per_class``, ``steps_per_epoch``).
DEFAULTS: dict[str, Any] = {
    "model": "wf-cifar",
    "epochs": 30,
    "batch_size": 256,
    "lr": 1e-3,
    "weight_decay": 0.05,
    "warmup_epochs": 2.0,
    "min_lr_ratio": 0.0,
    "label_smoothing": 0.1,
    "grad_clip": 5.0,
    "drop_path": 0.0,
    "ema_decay": 0.0,
    "crop_padding": 4,
    "flip": True,
    "randaugment_ops": 0,
    "randaugment_magnitude": 9.0,
    "erasing": 0.0,
    "mixup": 0.0,
    "cutmix": 0.0,
    "mix_prob": 1.0,
    "train_per_class": 0,
    "eval_per_class": 0,
    "steps_per_epoch": 0,
    "eval_batch_size": 500,
    "tta_flip": False,
    "compile": False,
    "time_limit_s": 0.0,
    "bf16": None,  # None: on exactly when training on CUDA
    "threads": 0,  # CPU threads for torch; 0: torch's default
}

#: Named recipes. ``quick-cpu``: real CIFAR-10 on a two-core CPU, >= 50% test accuracy within 4 minutes end to end,
#: for ``wf-cifar-tiny`` and ``deit-cifar-tiny`` (patch 4, width 64, depth 4). Short and light: a model that sees
#: each image five times cannot overfit, so no heavy regularisation; one thread (two threads of these small ops
#: were many times slower on the busy shared machine it was tuned on) and bf16 autocast, much faster for both
#: models on a CPU with native bf16 (chapter 06 measures it; pass ``bf16=False`` on other CPUs). ``gpu``: the
#: headline run of ``wf-cifar`` / ``deit-cifar`` on one H100, designed from throughput estimates
#: (:func:`gpu_preset_estimate`); not yet run on a GPU.
#:
#: ``cpu``: the longest training a learner would run on a laptop CPU: ``wf-cifar-cpu`` (patch 4, width 64, depth 6,
#: blocks 1 and 4 dynamic by the reference rule), one thread so that two runs (WeightFormer and DeiT) fit side by
#: side on two cores, goal >= 75% test accuracy in <= 20 minutes end to end. Chosen by measuring one-thread
#: training throughput on the 2-core machine it was built on (AMD EPYC with AVX512-BF16, bf16 autocast 1.5-1.8x
#: faster than fp32 there): width 96 or 128 gave 3-6x fewer images/s for 2-4x the parameters, so within 20 minutes
#: a width-64 model sees each image 15 times where a width-96 one sees it 8 times; depth 6 cost no more than
#: depth 5 (the two dynamic blocks, not the static ones, dominate the time). The recipe is quick-cpu's, with a
#: one-epoch warm-up for the longer schedule: a model this small underfits, so no heavy regularisation.
#:
#: ``study-cpu``: the per-run budget of the predictor study (:mod:`wf_lessons.ablate`): ``wf-cifar-study``
#: (width 64, depth 4, blocks 1 and 3 dynamic) for 2 epochs, about 2 minutes on one thread, so that 12 variants x 3
#: seeds fit in one working session on two cores.
PRESETS: dict[str, dict[str, Any]] = {
    "quick-cpu": {
        "model": "wf-cifar-tiny",
        "epochs": 5,
        "batch_size": 128,
        "lr": 3e-3,
        "weight_decay": 0.05,
        "warmup_epochs": 0.3,
        "min_lr_ratio": 0.0,
        "label_smoothing": 0.1,
        "grad_clip": 5.0,
        "drop_path": 0.0,
        "eval_per_class": 100,  # per-epoch curve on 1,000 test images; the final accuracy uses all 10,000
        "eval_batch_size": 500,
        "bf16": True,
        "threads": 1,
    },
    "cpu": {
        "model": "wf-cifar-cpu",
        "epochs": 15,
        "batch_size": 128,
        "lr": 3e-3,
        "weight_decay": 0.05,
        "warmup_epochs": 1.0,
        "min_lr_ratio": 0.0,
        "label_smoothing": 0.1,
        "grad_clip": 5.0,
        "drop_path": 0.0,
        "eval_per_class": 100,
        "eval_batch_size": 500,
        "bf16": True,
        "threads": 1,
    },
    "study-cpu": {
        "model": "wf-cifar-study",
        "epochs": 2,
        "batch_size": 128,
        "lr": 3e-3,
        "weight_decay": 0.05,
        "warmup_epochs": 0.3,
        "min_lr_ratio": 0.0,
        "label_smoothing": 0.1,
        "grad_clip": 5.0,
        "drop_path": 0.0,
        "eval_per_class": 100,
        "eval_batch_size": 500,
        "bf16": True,
        "threads": 1,
    },
    "gpu": {
        "model": "wf-cifar",
        "epochs": 60,
        "batch_size": 512,
        "lr": 2e-3,
        "weight_decay": 0.05,
        "warmup_epochs": 3.0,
        "min_lr_ratio": 0.01,
        "label_smoothing": 0.1,
        "grad_clip": 5.0,
        "drop_path": 0.1,
        "randaugment_ops": 2,
        "randaugment_magnitude": 9.0,
        "erasing": 0.25,
        "mixup": 0.8,
        "cutmix": 1.0,
        "mix_prob": 0.5,
        "eval_batch_size": 1000,
        "compile": True,
        "time_limit_s": 540.0,
    },
}

#: What the gpu preset's design assumes about one H100 running these width-192 models (sustained rates, not peaks).
#: No GPU was available when the preset was written: these are estimates to be replaced by measurements
#: (``python -m wf_lessons.bench train-throughput`` on the GPU).
GPU_ASSUMED_RATES = {"memory_tb_per_s": 2.5, "matmul_tflop_per_s": 400.0}

GPU_PRESET_REASONING = """\
The gpu preset was designed without a GPU, from an estimate of the epoch time (gpu_preset_estimate): counted
FLOPs of a training step (3 x forward) at an assumed sustained matmul rate, plus the memory traffic of the
element-wise work (norms, activations, residual adds, depthwise convolutions: a rough model of about 12 N x C plus
6 N x 4C bf16 values per block, forward and backward) at an assumed sustained memory bandwidth. At width 192 with
256 tokens the step is bound by memory traffic more than by matmuls, which is what bf16 and torch.compile (fusing
element-wise kernels) address. The epoch count is chosen so that the estimated training time stays under the
5-minute goal (>= 94.5% test accuracy, mean of 3 seeds, no TTA), leaving room for compilation and evaluation in
one 10-minute command; time_limit_s stops after the last epoch that fits, with a resumable checkpoint. The
regularisation (RandAugment m9, erasing 0.25, mixup/CutMix on half the batches, label smoothing 0.1, drop-path
0.1) follows DeiT and the small-ViT CIFAR anchors of PAPER.md section 8, lighter on mixing because the schedule
is short. On the GPU, measure first (python -m wf_lessons.bench train-throughput --compile) and change --epochs if
the measured epoch time differs from the estimate."""


def gpu_preset_estimate(model: str = "wf-cifar", rates: dict[str, float] | None = None) -> dict[str, float]:
    """The estimate behind the gpu preset: seconds per epoch and per run of ``model`` on one H100.

    Counts the forward FLOPs of one 32×32 image (``FlopCounterMode``), takes 3× for a training step, and adds the
    memory traffic of the rough model in :data:`GPU_PRESET_REASONING`, at the rates of :data:`GPU_ASSUMED_RATES`.
    """
    rates = rates or GPU_ASSUMED_RATES
    net = build_model(model).eval()
    flops = count_flops(net, torch.zeros(1, 3, 32, 32))
    tokens = (32 // net.patch_size) ** 2
    width, depth = net.norm.normalized_shape[0], len(net.blocks)
    bytes_per_image = 3 * depth * (12 * tokens * width + 6 * tokens * 4 * width) * 2  # fwd + bwd, bf16
    images = 50_000  # one epoch
    matmul_s = 3 * flops * images / (rates["matmul_tflop_per_s"] * 1e12)
    memory_s = bytes_per_image * images / (rates["memory_tb_per_s"] * 1e12)
    epoch_s = matmul_s + memory_s
    return {"forward_gflops_per_image": flops / 1e9, "memory_mb_per_image": bytes_per_image / 1e6,
            "matmul_s_per_epoch": matmul_s, "memory_s_per_epoch": memory_s, "epoch_s": epoch_s,
            "epochs": PRESETS["gpu"]["epochs"], "train_s": epoch_s * PRESETS["gpu"]["epochs"]}


_UNSET_FIELDS = tuple(DEFAULTS)
# fields that define what is trained: a resumed run must agree with its checkpoint on all of them
_RUN_FIELDS = (*_UNSET_FIELDS, "seed", "model_overrides")
_EXEMPT_ON_RESUME = ("compile", "time_limit_s", "eval_batch_size", "bf16", "threads")


@dataclass
class TrainConfig:
    """Everything a training run needs. Settings left ``None`` take the preset's value, else :data:`DEFAULTS`.

    ``model``: a name of :data:`wf_lessons.models.MODEL_NAMES`; ``model_overrides``: keyword arguments for
    :func:`~wf_lessons.models.build_model` (``drop_path`` is a setting of its own, merged in; an override wins).
    ``lr`` is the peak learning rate, reached after ``warmup_epochs`` and decayed by a cosine to
    ``min_lr_ratio·lr``. ``randaugment_ops`` (0 = off), ``erasing`` (a probability), ``mixup``/``cutmix``
    (Beta alphas, applied to a fraction ``mix_prob`` of the batches) switch the stronger augmentations.
    ``train_per_class``/``eval_per_class`` keep a balanced subset (0 = all); the per-epoch evaluation uses
    ``eval_per_class``, the final one always the whole test set. ``steps_per_epoch`` (0 = all) shortens epochs.
    ``bf16``: autocast to bfloat16 (``None``: on exactly when training on CUDA); ``threads``: CPU threads for torch
    during the run (0: torch's default). ``time_limit_s`` (0 = none) stops
    after the last epoch that fits, keeping the checkpoint for ``resume``. ``run_name`` defaults to
    ``train-<model>-<preset or custom>-seed<seed>``; the log goes to ``data/runs/<run_name>.json`` and the
    checkpoint to ``<checkpoint_dir>/<run_name>.pt`` (default ``data/checkpoints``). Existing files of the same run
    name are never overwritten unless ``resume`` or ``overwrite`` is set.
    """

    model: str | None = None
    preset: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    min_lr_ratio: float | None = None
    label_smoothing: float | None = None
    grad_clip: float | None = None
    drop_path: float | None = None
    ema_decay: float | None = None
    crop_padding: int | None = None
    flip: bool | None = None
    randaugment_ops: int | None = None
    randaugment_magnitude: float | None = None
    erasing: float | None = None
    mixup: float | None = None
    cutmix: float | None = None
    mix_prob: float | None = None
    train_per_class: int | None = None
    eval_per_class: int | None = None
    steps_per_epoch: int | None = None
    eval_batch_size: int | None = None
    tta_flip: bool | None = None
    compile: bool | None = None
    time_limit_s: float | None = None
    bf16: bool | None = None
    threads: int | None = None
    seed: int = 0
    model_overrides: dict[str, Any] = field(default_factory=dict)
    run_name: str | None = None
    checkpoint_dir: str | Path | None = None
    save_checkpoints: bool = True
    device: str | None = None
    write_log: bool = True
    resume: bool = False
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; valid presets: {', '.join(PRESETS)}")
        preset = PRESETS.get(self.preset, {}) if self.preset else {}
        for name in _UNSET_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, preset.get(name, DEFAULTS[name]))
        if self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; valid models: {', '.join(MODEL_NAMES)}")
        if not isinstance(self.model_overrides, dict):
            raise TypeError(f"model_overrides must be a dict, got {type(self.model_overrides).__name__}")
        positive_ints = ("epochs", "batch_size", "eval_batch_size")
        non_negative_ints = ("seed", "crop_padding", "randaugment_ops", "train_per_class", "eval_per_class",
                             "steps_per_epoch", "threads")
        for name in positive_ints + non_negative_ints:
            value, low = getattr(self, name), 1 if name in positive_ints else 0
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        for name in ("weight_decay", "warmup_epochs", "grad_clip", "drop_path", "time_limit_s", "mixup", "cutmix"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("min_lr_ratio", "label_smoothing", "ema_decay", "erasing", "mix_prob", "drop_path"):
            if not 0 <= getattr(self, name) <= 1 or (name in ("ema_decay", "drop_path") and getattr(self, name) == 1):
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        self.augment()  # validates the augmentation settings
        if self.run_name is None:
            self.run_name = f"train-{self.model}-{self.preset or 'custom'}-seed{self.seed}"
        if not self.run_name or any(c in self.run_name for c in "/\\") or self.run_name.startswith("."):
            raise ValueError(f"run_name must be a plain file name, got {self.run_name!r}")
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: resume continues a run, overwrite restarts it")

    # ------------------------------------------------------------------------------------------ derived
    def model_kwargs(self) -> dict[str, Any]:
        """The keyword arguments given to ``build_model``: ``drop_path`` (when > 0) and ``model_overrides``."""
        return ({"drop_path": self.drop_path} if self.drop_path > 0 else {}) | self.model_overrides

    def augment(self) -> BatchAugment:
        """The stronger augmentations of this configuration (all off by default)."""
        return BatchAugment(
            randaugment_ops=self.randaugment_ops,
            randaugment_magnitude=self.randaugment_magnitude,
            erasing=self.erasing,
            mixup=self.mixup,
            cutmix=self.cutmix,
            mix_prob=self.mix_prob,
            num_classes=int(self.model_overrides.get("num_classes", len(CLASSES))),
        )

    def checkpoint_path(self) -> Path:
        folder = Path(self.checkpoint_dir) if self.checkpoint_dir is not None else wf_config.data_dir() / "checkpoints"
        return folder / f"{self.run_name}.pt"

    def log_path(self) -> Path:
        return wf_config.runs_dir() / f"{self.run_name}.json"

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-friendly values."""
        d = dataclasses.asdict(self)
        d["checkpoint_dir"] = None if self.checkpoint_dir is None else str(self.checkpoint_dir)
        return d


# ------------------------------------------------------------------------------------- optimisation
def build_optimizer(model: nn.Module, lr: float, weight_decay: float, fused: bool | None = None) -> torch.optim.AdamW:
    """AdamW (betas 0.9, 0.999) with two groups: weight decay on matrices and kernels (``ndim >= 2``), none on
    norms, biases, other 1-D parameters and position embeddings (as DeiT and the reference code)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith("pos_embed") else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if fused is None:
        fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), fused=fused or None)


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Learning-rate multiplier per step: linear warm-up from ``1/warmup_steps`` to 1, then a cosine to
    ``min_ratio`` at ``total_steps`` (for ``torch.optim.lr_scheduler.LambdaLR``)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    targets: Tensor,
    *,
    label_smoothing: float = 0.0,
    grad_clip: float = 0.0,
    bf16: bool = False,
) -> tuple[Tensor, Tensor]:
    """One optimisation step on a batch; returns the (detached) loss and logits ``(B, K)``.

    ``images`` ``(B, 3, H, W)``; ``targets``: int64 labels ``(B,)`` or probabilities ``(B, K)`` (mixing).
    """
    with torch.autocast(device_type=images.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(images)
    loss = F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.detach(), logits.detach()


# ---------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(
    model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], *, tta_flip: bool = False, bf16: bool = False
) -> tuple[Tensor, Tensor]:
    """Logits ``(N, K)`` (float32, on the CPU) and labels ``(N,)`` for every batch of ``loader``, in eval mode.

    ``tta_flip`` averages the logits of each image and its mirror image.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    all_logits, all_labels = [], []
    try:
        for images, labels in loader:
            images = images.to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(images).float()
                if tta_flip:
                    logits = (logits + model(images.flip(-1)).float()) / 2
            all_logits.append(logits.cpu())
            all_labels.append(labels.cpu())
    finally:
        model.train(was_training)
    if not all_logits:
        raise ValueError("the loader yielded no batches")
    return torch.cat(all_logits), torch.cat(all_labels)


def evaluate(
    model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], *, tta_flip: bool = False, bf16: bool = False
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` over ``loader``: ``{"loss", "accuracy", "images"}``."""
    logits, labels = predict(model, loader, tta_flip=tta_flip, bf16=bf16)
    return {
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": (logits.argmax(1) == labels).float().mean().item(),
        "images": int(labels.numel()),
    }


# --------------------------------------------------------------------------------------- checkpoints
def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint as a dict (tensors on the CPU); clear errors for a missing or foreign file.

    ``path`` may be as a run log records it (relative to the repository, see :func:`wf_lessons.runlog.portable`).
    """
    path = runlog.resolve(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a wf_lessons.train checkpoint (it has no format {CHECKPOINT_FORMAT!r})")
    return ckpt


def load_model(
    checkpoint_path: str | Path, *, use_ema: bool = True, device: str | torch.device | None = "cpu"
) -> nn.Module:
    """Rebuild the model of a training checkpoint (its name and overrides are stored in it), in eval mode.

    ``use_ema``: load the EMA weights when the run kept them (that is the model the run evaluated).
    """
    ckpt = load_checkpoint(checkpoint_path)
    model = build_model(ckpt["model_name"], **ckpt["model_overrides"])
    state = ckpt["model"]
    if use_ema and ckpt.get("ema") is not None:
        prefix = "module."
        state = {k[len(prefix):]: v for k, v in ckpt["ema"].items() if k.startswith(prefix)}
    model.load_state_dict(state)
    return model.to(device).eval()


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def _resume_problems(ckpt: dict[str, Any], config: TrainConfig) -> list[str]:
    """What differs between a checkpoint and the configuration that wants to continue it."""
    if ckpt["model_name"] != config.model or ckpt["model_overrides"] != config.model_kwargs():
        return [
            f"the checkpoint is of model {ckpt['model_name']!r} with overrides {ckpt['model_overrides']}, "
            f"not {config.model!r} with {config.model_kwargs()}"
        ]
    saved, now = ckpt["config"], config.to_dict()
    return [
        f"{name}: checkpoint {saved.get(name)!r}, now {now[name]!r}"
        for name in _RUN_FIELDS
        if name not in _EXEMPT_ON_RESUME and saved.get(name) != now[name]
    ]


# ------------------------------------------------------------------------------------------ training
def _per_class(images: Tensor, labels: Tensor, per_class: int) -> tuple[Tensor, Tensor]:
    """The first ``per_class`` images of each class (all when 0), in their original order."""
    if per_class == 0:
        return images, labels
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in labels.unique()]).sort().values
    return images[keep], labels[keep]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where bf16 autocast is fast."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux), so the CLI's wall time includes Python and torch imports."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _check_paths(config: TrainConfig) -> None:
    """Refuse to overwrite what a user made, and to resume what does not exist."""
    ckpt, log = config.checkpoint_path(), config.log_path()
    if config.resume:
        if not ckpt.is_file():
            raise FileNotFoundError(f"cannot resume: there is no checkpoint {ckpt} (run name {config.run_name!r})")
        return
    if config.overwrite:
        return
    existing = [str(p) for p, used in ((log, config.write_log), (ckpt, config.save_checkpoints)) if used and p.exists()]
    if existing:
        raise FileExistsError(
            f"run {config.run_name!r} already exists ({', '.join(existing)}); pass resume=True (--resume) to continue "
            "it, overwrite=True (--overwrite) to start it again, or another run_name (--run-name)"
        )


_CLI_COMMAND: str | None = None  # set by main() so the run log records the command line


def train(
    config: TrainConfig,
    data: tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]] | None = None,
) -> dict[str, Any]:
    """Train ``config.model`` on CIFAR-10 (or on ``data``) and return the run log (also written unless
    ``config.write_log`` is False).

    ``data``: optional ``((train_images, train_labels), (test_images, test_labels))``, uint8 ``(N, 3, H, W)`` and
    int64 ``(N,)`` tensors, used instead of CIFAR-10 (tests, small experiments). Raises ``ValueError`` for settings
    that cannot work, ``FileExistsError`` rather than overwrite a run, ``DataNotFoundError`` without the data.
    """
    start = time.perf_counter()
    cfg = config
    device = wf_config.device(cfg.device)
    with atomic.claim(cfg.log_path().with_suffix(".lock"), f"run {cfg.run_name!r}"):
        _check_paths(cfg)
        return _train_claimed(cfg, data, device, start)


def _train_claimed(cfg: TrainConfig, data: Any, device: torch.device, start: float) -> dict[str, Any]:
    ckpt = load_checkpoint(cfg.checkpoint_path()) if cfg.resume else None
    if ckpt is not None and (problems := _resume_problems(ckpt, cfg)):
        raise ValueError(f"cannot resume {cfg.checkpoint_path()}: it was made with other settings:\n  "
                         + "\n  ".join(problems))
    bf16 = device.type == "cuda" if cfg.bf16 is None else cfg.bf16
    if bf16 and device.type == "cpu" and not cpu_has_native_bf16():
        warnings.warn("bf16 autocast on a CPU without native bf16 (AVX512-BF16 or AMX) is emulated and slow; "
                      "pass bf16=False (--no-bf16)", stacklevel=2)
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        return _train(cfg, data, device, bf16, ckpt, start)
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    cfg: TrainConfig,
    data: tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]] | None,
    device: torch.device,
    bf16: bool,
    ckpt: dict[str, Any] | None,
    start: float,
) -> dict[str, Any]:
    from tqdm.auto import tqdm

    # data: the whole split on the device
    if data is None:
        (train_x, train_y), (test_x, test_y) = cifar10("train"), cifar10("test")
        source = f"CIFAR-10 ({runlog.portable(wf_config.data_dir())})"
    else:
        (train_x, train_y), (test_x, test_y) = data
        source = "tensors given to train()"
    train_x, train_y = _per_class(train_x, train_y, cfg.train_per_class)
    if cfg.batch_size > train_x.shape[0]:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the {train_x.shape[0]} training images")
    eval_x, eval_y = _per_class(test_x, test_y, cfg.eval_per_class)
    train_loader = DeviceLoader(train_x, train_y, cfg.batch_size, train=True, device=device, seed=cfg.seed,
                                crop_padding=cfg.crop_padding, flip=cfg.flip)
    eval_loader = DeviceLoader(eval_x, eval_y, min(cfg.eval_batch_size, eval_x.shape[0]), train=False, device=device)
    test_loader = (eval_loader if cfg.eval_per_class == 0 else
                   DeviceLoader(test_x, test_y, min(cfg.eval_batch_size, test_x.shape[0]), train=False, device=device))
    steps = len(train_loader) if cfg.steps_per_epoch == 0 else min(cfg.steps_per_epoch, len(train_loader))
    total_steps = steps * cfg.epochs
    data_s = time.perf_counter() - start

    # model, optimiser, schedule, EMA
    wf_config.seed_everything(cfg.seed)
    model = build_model(cfg.model, **cfg.model_kwargs()).to(device)
    n_params = count_parameters(model)
    model.eval()  # no drop-path while counting, so the global random state is untouched
    flops = count_flops(model, torch.zeros(1, 3, *train_x.shape[-2:], device=device))
    model.train()
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    warmup_steps = min(round(cfg.warmup_epochs * steps), total_steps)  # a warm-up longer than the run is cut
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup_steps, cfg.min_lr_ratio))
    ema = None
    if cfg.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    augment = cfg.augment()
    history: list[dict[str, Any]] = []
    start_epoch, train_s = 0, 0.0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        history, start_epoch, train_s = list(ckpt["history"]), ckpt["epoch"], ckpt["train_s"]
        _restore_rng(ckpt["rng"])
    step_model = torch.compile(model) if cfg.compile else model
    eval_model = ema.module if ema is not None else model

    def save_checkpoint(epoch: int) -> None:
        atomic.torch_save({
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "model_name": cfg.model, "model_overrides": cfg.model_kwargs(), "config": cfg.to_dict(),
            "epoch": epoch, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "ema": ema.state_dict() if ema is not None else None,
            "rng": _rng_state(), "history": history, "train_s": train_s,
        }, cfg.checkpoint_path())

    env = runlog.environment(device)
    env["command"] = _CLI_COMMAND if _CLI_COMMAND is not None else f"python: wf_lessons.train.train({_short_repr(cfg)})"
    say = tqdm.write if cfg.progress else (lambda *_: None)
    say(f"{cfg.run_name}: {cfg.model} ({n_params:,} parameters, {flops / 1e6:,.1f} MFLOPs/image) on {env['device']}, "
        f"{train_x.shape[0]:,} training images, {cfg.epochs} epochs of {steps} steps")

    stopped = None
    bar_args = {} if cfg.progress else {"disable": True}  # otherwise tqdm reads TQDM_DISABLE itself
    with tqdm(total=total_steps, initial=start_epoch * steps, unit="step", dynamic_ncols=True, **bar_args) as bar:
        for epoch in range(start_epoch, cfg.epochs):
            generator = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + 7919 * (epoch + 1))
            rng = random.Random(cfg.seed * 1_000_003 + epoch)
            bar.set_description(f"epoch {epoch + 1}/{cfg.epochs}")
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            _sync(device)
            epoch_start = time.perf_counter()
            for step, (images, labels) in enumerate(train_loader.epoch(epoch)):
                if step == steps:
                    break
                images, targets = augment(images, labels, generator, rng)
                loss, logits = train_step(step_model, optimizer, images, targets, label_smoothing=cfg.label_smoothing,
                                          grad_clip=cfg.grad_clip, bf16=bf16)
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                loss_sum += loss
                correct += (logits.argmax(1) == labels).sum()
                seen += labels.shape[0]
                bar.update(1)
                if (step + 1) % max(1, steps // 20) == 0 or step + 1 == steps:
                    elapsed = time.perf_counter() - epoch_start
                    bar.set_postfix(loss=f"{loss_sum.item() / (step + 1):.3f}", acc=f"{correct.item() / seen:.3f}",
                                    img_s=f"{seen / elapsed:.0f}")
            _sync(device)
            epoch_s = time.perf_counter() - epoch_start
            train_s += epoch_s
            eval_start = time.perf_counter()
            metrics = evaluate(eval_model, eval_loader, bf16=bf16)
            history.append({
                "epoch": epoch + 1,
                "train_loss": loss_sum.item() / steps,
                "train_acc": correct.item() / seen,
                "test_loss": metrics["loss"],
                "test_acc": metrics["accuracy"],
                "eval_images": metrics["images"],
                "lr": scheduler.get_last_lr()[0],
                "epoch_s": epoch_s,
                "train_s": train_s,
                "images_per_s": seen / epoch_s,
                "eval_s": time.perf_counter() - eval_start,
                "wall_s": time.perf_counter() - start,
            })
            h = history[-1]
            say(f"epoch {epoch + 1}/{cfg.epochs}: train loss {h['train_loss']:.4f} acc {h['train_acc']:.4f} | "
                f"test ({h['eval_images']} images) loss {h['test_loss']:.4f} acc {h['test_acc']:.4f} | "
                f"{h['images_per_s']:.0f} img/s, {epoch_s:.1f} s")
            if cfg.save_checkpoints:
                save_checkpoint(epoch + 1)
            elapsed = time.perf_counter() - start
            next_epoch_s = 1.1 * (epoch_s + h["eval_s"])
            if cfg.time_limit_s and epoch + 1 < cfg.epochs and elapsed + next_epoch_s > cfg.time_limit_s:
                stopped = f"time limit {cfg.time_limit_s:.0f} s: stopped after epoch {epoch + 1} (resume to continue)"
                say(stopped)
                break

    # final evaluation on the whole test set
    eval_start = time.perf_counter()
    final = evaluate(eval_model, test_loader, bf16=bf16)
    final = {"test_loss": final["loss"], "test_acc": final["accuracy"], "test_images": final["images"]}
    if cfg.tta_flip:
        final["test_acc_tta_flip"] = evaluate(eval_model, test_loader, tta_flip=True, bf16=bf16)["accuracy"]
    final["eval_s"] = time.perf_counter() - eval_start
    log = {
        "kind": "train",
        "run_name": cfg.run_name,
        **env,
        "seed": cfg.seed,
        "model": cfg.model,
        "model_overrides": cfg.model_kwargs(),
        "parameters": n_params,
        "flops_per_image": flops,
        "flops_note": "forward pass of one image, counted by torch.utils.flop_counter (2 FLOPs per MAC)",
        "bf16": bf16,
        "config": cfg.to_dict(),
        "data": {"source": source, "train_images": int(train_x.shape[0]), "test_images": int(test_x.shape[0]),
                 "eval_images_per_epoch": int(eval_x.shape[0]), "steps_per_epoch": steps},
        "epochs": history,
        "epochs_done": len(history),
        "complete": len(history) == cfg.epochs,
        "stopped": stopped,
        "resumed_from_epoch": start_epoch if ckpt is not None else None,
        "evaluated_model": "ema" if ema is not None else "model",
        **final,
        "train_s": train_s,
        "data_s": data_s,
        "checkpoint": runlog.portable(cfg.checkpoint_path()) if cfg.save_checkpoints else None,
    }
    log["wall_s"] = time.perf_counter() - start
    age = _process_age_s()
    log["process_wall_s"] = age if _CLI_COMMAND is not None else None
    if cfg.write_log:
        runlog.write(log, cfg.run_name)
    return log


def _short_repr(cfg: TrainConfig) -> str:
    """``TrainConfig(...)`` with only the settings that differ from what model, preset and seed give."""
    base = TrainConfig(model=cfg.model, preset=cfg.preset, seed=cfg.seed).to_dict()
    given = {k: v for k, v in cfg.to_dict().items() if k in ("model", "preset", "seed") or v != base[k]}
    return "TrainConfig(" + ", ".join(f"{k}={v!r}" for k, v in given.items()) + ")"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------- command
_HELP = {
    "model": f"model name, one of: {', '.join(MODEL_NAMES)} (default: the preset's, else wf-cifar)",
    "preset": f"named recipe: {', '.join(PRESETS)}",
    "epochs": "number of epochs",
    "batch_size": "training batch size",
    "lr": "peak learning rate (after warm-up)",
    "weight_decay": "AdamW weight decay (not on norms, biases, 1-D parameters)",
    "warmup_epochs": "linear warm-up length in epochs (may be fractional)",
    "min_lr_ratio": "final learning rate as a fraction of the peak",
    "label_smoothing": "label smoothing of the cross-entropy",
    "grad_clip": "clip the gradient norm to this (0: off)",
    "drop_path": "drop-path (stochastic depth) rate of the last block",
    "ema_decay": "keep an EMA of the weights with this decay and evaluate it (0: off)",
    "crop_padding": "random-crop padding in pixels (0: no crop)",
    "flip": "random horizontal flips",
    "randaugment_ops": "RandAugment operations per image (0: off)",
    "randaugment_magnitude": "RandAugment magnitude, 0..10",
    "erasing": "random-erasing probability per image",
    "mixup": "mixup Beta alpha (0: off)",
    "cutmix": "CutMix Beta alpha (0: off)",
    "mix_prob": "fraction of batches mixed",
    "train_per_class": "train on the first N images of each class (0: all)",
    "eval_per_class": "per-epoch evaluation on N test images per class (0: all); the final one uses all",
    "steps_per_epoch": "stop each epoch after N steps (0: full epochs)",
    "eval_batch_size": "evaluation batch size",
    "tta_flip": "also report the final accuracy with flip test-time augmentation",
    "compile": "torch.compile the model for training",
    "time_limit_s": "stop after the last epoch that fits in this many seconds (0: no limit)",
    "bf16": "bf16 autocast (default: on for CUDA)",
    "seed": "random seed",
    "run_name": "name of the run log and checkpoint (default: train-<model>-<preset>-seed<seed>)",
    "checkpoint_dir": "folder of checkpoints (default: data/checkpoints)",
    "device": "cpu or cuda (default: cuda when available)",
    "threads": "CPU threads for torch (0: torch's default)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m wf_lessons.train",
        description="Train a model of the course on CIFAR-10. Options left out take the preset's value, else the "
        "defaults of wf_lessons.train.DEFAULTS.",
    )
    for f in dataclasses.fields(TrainConfig):
        if f.name not in _HELP:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = DEFAULTS.get(f.name, f.default)
        if f.name in ("bf16",) or isinstance(kind, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=_HELP[f.name])
        else:
            typ = {"seed": int, "threads": int}.get(f.name) or (type(kind) if kind is not None else str)
            parser.add_argument(flag, type=typ, default=None, help=_HELP[f.name])
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="model override for build_model, e.g. --override linear_predictor=\"'gap'\" "
                             "(VALUE is a Python literal; a bare word is taken as a string)")
    parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start again, replacing the run's log and checkpoint")
    parser.add_argument("--no-log", action="store_true", help="do not write a run log")
    parser.add_argument("--no-checkpoint", action="store_true", help="do not write checkpoints")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or epoch lines")
    return parser


def _parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise ValueError(f"--override expects KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    """The :class:`TrainConfig` described by command-line arguments (unset options: preset, then defaults)."""
    args = vars(_parser().parse_args(argv))
    overrides = dict(_parse_override(o) for o in args.pop("override"))
    flags = {"resume": args.pop("resume"), "overwrite": args.pop("overwrite"), "write_log": not args.pop("no_log"),
             "save_checkpoints": not args.pop("no_checkpoint"), "progress": not args.pop("no_progress")}
    given = {k: v for k, v in args.items() if v is not None}
    return TrainConfig(**given, **flags, model_overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    """The command line: train, print the summary line; exit 2 with a clear message for bad arguments."""
    global _CLI_COMMAND
    import shlex

    _CLI_COMMAND = "python -m wf_lessons.train " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                                                     else argv))
    try:
        config = config_from_args(argv)
        log = train(config)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, DataNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        config_path = config.checkpoint_path() if "config" in locals() else None
        where = (f"the last good checkpoint is {config_path}; continue with --resume" if config_path is not None
                 and config_path.exists() else "no checkpoint was written yet")
        print(f"\ninterrupted: {where}", file=sys.stderr)
        return 130
    finally:
        _CLI_COMMAND = None
    wall = log["process_wall_s"] if log["process_wall_s"] is not None else log["wall_s"]
    print(f"test_acc={log['test_acc']:.4f} epochs={log['epochs_done']} wall_s={wall:.1f} train_s={log['train_s']:.1f} "
          f"run={log['run_name']}")
    return 0


# ------------------------------------------------------------------------------------- chapter 06 exercises
def _gpu_schedule_steps() -> tuple[int, int]:
    preset = PRESETS["gpu"]
    steps = 50_000 // preset["batch_size"]  # the training loader drops the last partial batch
    return steps * preset["epochs"], round(preset["warmup_epochs"] * steps)


def _smoothed_loss_floor(smoothing: float = 0.1, classes: int = 10) -> float:
    """The smallest cross-entropy against a smoothed target: its entropy (reached by predicting the target)."""
    target = torch.full((classes,), smoothing / classes, dtype=torch.float64)
    target[0] += 1 - smoothing
    return float(-(target * target.log()).sum())


def _no_decay_count() -> int:
    groups = build_optimizer(build_model("wf-cifar"), 1e-3, 0.05).param_groups
    return sum(p.numel() for g in groups if g["weight_decay"] == 0 for p in g["params"])


def _check_tta(answer: Callable[[nn.Module, Tensor], Tensor]) -> tuple[bool, str]:
    gen = torch.Generator().manual_seed(0)
    torch_state = torch.get_rng_state()
    torch.manual_seed(0)
    model = build_model("wf-cifar-quick", img_size=16, embed_dim=16, depth=2).eval()
    torch.set_rng_state(torch_state)
    images = torch.randn(4, 3, 16, 16, generator=gen)
    expected, _ = predict(model, [(images, torch.zeros(4, dtype=torch.long))], tta_flip=True)
    with torch.no_grad():
        got = answer(model, images)
    if not isinstance(got, Tensor) or got.shape != expected.shape:
        shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
        return False, f"expected logits of shape {tuple(expected.shape)}, got {shape}"
    if not torch.allclose(got.float(), expected, atol=1e-5):
        if torch.allclose(got.float(), model(images), atol=1e-5):
            return False, "these are the logits of the images alone: add those of the mirrored images"
        return False, f"not quite: your logits differ from flip TTA by up to {(got - expected).abs().max():.3g}"
    return True, "correct: the mean of the logits of each image and of its mirror image"


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 06; prints why, returns True when it is right.

    1. The gpu preset's schedule: ``(total optimizer steps, warm-up steps)`` on the 50,000 training images.
    2. The smallest cross-entropy a model can reach against targets smoothed with ε = 0.1 over 10 classes.
    3. A function ``flip_tta_logits(model, images)`` returning flip-TTA logits ``(B, K)``.
    4. How many parameters (scalars) of ``wf-cifar`` get no weight decay from ``build_optimizer``.
    """
    if number not in (1, 2, 3, 4):
        raise ValueError(f"chapter 06 has exercises 1, 2, 3 and 4, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 1:
        expected = _gpu_schedule_steps()
        if not isinstance(answer, tuple) or len(answer) != 2:
            ok, message = False, f"expected a pair (total steps, warm-up steps), got {answer!r}"
        elif tuple(answer) == expected:
            ok, message = True, f"correct: {expected[0]:,} steps, of which the first {expected[1]} warm up"
        elif answer[0] == 50_000 / PRESETS["gpu"]["batch_size"] * PRESETS["gpu"]["epochs"]:
            ok, message = False, "not quite: the training loader drops the last partial batch of each epoch"
        else:
            ok, message = False, f"not quite: {answer} (steps per epoch = training images // batch size)"
    elif number == 2:
        expected = _smoothed_loss_floor()
        correct = f"{expected:.4f}, the entropy of the smoothed target; the loss never reaches 0"
        ok, message = check_number(answer, expected, integer=False, abs_tol=1e-3, correct=correct)
    elif number == 3:
        ok, message = check_callable(answer, _check_tta)
    else:
        expected = _no_decay_count()
        correct = f"{expected:,} parameters, all in norms, biases and other 1-D tensors"
        ok, message = check_number(answer, expected, integer=True, correct=correct, answer_format=",")
    return report(number, ok, message)


if __name__ == "__main__":
    sys.exit(main())

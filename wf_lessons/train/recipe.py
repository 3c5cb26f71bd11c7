"""The recipe of a training run: every tunable setting, the named presets, and :class:`TrainConfig`.

A setting left ``None`` in :class:`TrainConfig` takes the preset's value, else :data:`DEFAULTS`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from wf_lessons import config as wf_config
from wf_lessons.augment import BatchAugment
from wf_lessons.checks import check_int
from wf_lessons.models import CONFIGS, MODEL_NAMES

__all__ = ["DEFAULTS", "PRESETS", "SEED_LIMIT", "RUN_NAME_MAX_BYTES", "TrainConfig", "check_run_name"]

#: Values of every tunable setting when neither the call nor the preset gives one. ``0`` switches a feature off
#: (``grad_clip``, ``ema_decay``, ``erasing``, ``mixup``, ``cutmix``, ``time_limit_s``) or means "all"
#: (``train_per_class``, ``eval_per_class``, ``steps_per_epoch``) or "none" (``val_images``).
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
    "val_images": 0,
    "eval_batch_size": 500,
    "tta_flip": False,
    "compile": False,
    "time_limit_s": 0.0,
    # None: the device's choice (bf16 autocast on Ampere and newer GPUs, fp16 + gradient scaler on older ones, fp32 on
    # a CPU); "auto": the same on a GPU, measured on a CPU (wf_lessons.train.machine); or "bf16", "fp16", "fp32"
    "precision": None,
    "bf16": None,  # the old name of the precision setting: True is "bf16", False "fp32", "auto" "auto"
    "threads": 0,  # CPU threads for torch; 0: torch's default; "auto": measure 1 and all cores
}

#: What the CPU presets share: short schedules on small models that underfit, so no heavy regularisation.
_CPU_RECIPE: dict[str, Any] = {
    "batch_size": 128,
    "lr": 3e-3,
    "weight_decay": 0.05,
    "min_lr_ratio": 0.0,
    "label_smoothing": 0.1,
    "grad_clip": 5.0,
    "drop_path": 0.0,
    "eval_per_class": 100,  # per-epoch curve on 1,000 test images; the final accuracy uses all 10,000
    "eval_batch_size": 500,
    "precision": "auto",
    "threads": 1,
}

#: Named recipes. The CPU presets say ``precision="auto"`` (and ``quick-cpu`` also ``threads="auto"``): a few training
#: steps of the run's model with each candidate pick the fastest at start (:mod:`wf_lessons.train.machine`), because
#: bf16 autocast is faster than fp32 on some CPUs and slower on others, and the run log records what was measured.
#:
#: ``quick-cpu``: real CIFAR-10 on a two-core CPU, goal >= 50% test accuracy within 4 minutes end to end (one run
#: at a time), for ``wf-cifar-tiny`` and ``deit-cifar-tiny`` (patch 4, width 64, depth 4). Short and light: a model
#: that sees each image five times cannot overfit, so no heavy regularisation.
#:
#: ``gpu``: the headline run of ``wf-cifar`` / ``deit-cifar`` on one H100, designed from throughput estimates
#: (:func:`wf_lessons.train.gpu.gpu_preset_estimate`); not yet run on a GPU.
#:
#: ``cpu``: the longest training a learner would run on a laptop CPU: ``wf-cifar-cpu`` (patch 4, width 64, depth 6,
#: blocks 1 and 4 dynamic by the reference rule), one thread so that two runs (WeightFormer and DeiT) fit side by
#: side on two cores; goal >= 75% test accuracy in <= 20 minutes end to end. Chosen by timing a few training steps
#: of candidate widths and depths on one thread of the 2-core machine it was built on (not kept as a log): widths
#: 96 and 128 trained several times fewer images per second for several times the parameters, so within the budget
#: they would see each image about half as often as width 64; depth 6 cost about as much as depth 5, because the
#: two dynamic blocks, not the static ones, dominate the time. The run logs of seeds 1 and 2 hold what the preset's
#: start-up measurement found there (``segments[0]["measured_step_s"]``). The recipe is quick-cpu's with a one-epoch
#: warm-up for the longer schedule: a model this small underfits, so no heavy regularisation.
#:
#: ``study-cpu``: the per-run budget of the predictor study (:mod:`wf_lessons.ablate`): ``wf-cifar-study``
#: (width 64, depth 4, blocks 1 and 3 dynamic) for 2 epochs, about 2 minutes on one thread, so that 12 variants x 3
#: seeds fit in one working session on two cores.
#:
#: ``controls-cpu`` and ``controls-short-cpu``: chapter 08's controlled study (:mod:`wf_lessons.ablate`) on the
#: ``cpu`` preset's network, 15 and 2 epochs: 5,000 training images held out as a validation split (curves,
#: learning-rate choice), the test set evaluated once at the end; bf16 autocast fixed (not measured per run), so
#: that compared runs differ in nothing but their variant. The learning rate is set per run by the study.
#: ``controls-long-cpu`` (30 epochs) and ``controls-grid16-cpu`` (patch 2: a 16×16 token grid, ``wf-cifar-cpu-p2``)
#: are its two regimes where global modelling should matter more, each one change from ``controls-cpu``.
#: ``study-gpu``: chapter 08's GPU study (:mod:`wf_lessons.gpu_study`): ``controls-long-cpu``'s recipe (30 epochs)
#: on one GPU, in the precision the GPU chooses; sized by estimate to about 30 minutes on one H100.
PRESETS: dict[str, dict[str, Any]] = {
    "quick-cpu": {**_CPU_RECIPE, "model": "wf-cifar-tiny", "epochs": 5, "warmup_epochs": 0.3, "threads": "auto"},
    "cpu": {**_CPU_RECIPE, "model": "wf-cifar-cpu", "epochs": 15, "warmup_epochs": 1.0},
    "study-cpu": {**_CPU_RECIPE, "model": "wf-cifar-study", "epochs": 2, "warmup_epochs": 0.3},
    "controls-cpu": {**_CPU_RECIPE, "model": "wf-cifar-cpu", "epochs": 15, "warmup_epochs": 1.0, "val_images": 5000,
                     "eval_per_class": 0, "precision": "bf16"},
    "controls-short-cpu": {**_CPU_RECIPE, "model": "wf-cifar-cpu", "epochs": 2, "warmup_epochs": 0.3,
                           "val_images": 5000, "eval_per_class": 0, "precision": "bf16"},
    "controls-long-cpu": {**_CPU_RECIPE, "model": "wf-cifar-cpu", "epochs": 30, "warmup_epochs": 1.0,
                          "val_images": 5000, "eval_per_class": 0, "precision": "bf16"},
    "controls-grid16-cpu": {**_CPU_RECIPE, "model": "wf-cifar-cpu-p2", "epochs": 15, "warmup_epochs": 1.0,
                            "val_images": 5000, "eval_per_class": 0, "precision": "bf16"},
    # chapter 08's GPU study (wf_lessons.gpu_study): controls-long-cpu's 30 epochs on a GPU, in its precision
    "study-gpu": {**_CPU_RECIPE, "model": "wf-cifar-cpu", "epochs": 30, "warmup_epochs": 1.0, "val_images": 5000,
                  "eval_per_class": 0, "precision": None, "threads": 0},
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

#: The values of ``precision`` (besides None), as :data:`wf_lessons.train.machine.PRECISIONS`.
_PRECISIONS = ("auto", "bf16", "fp16", "fp32")

#: Seeds are ints in [0, SEED_LIMIT): the generators that the run derives from them take 64-bit seeds.
SEED_LIMIT = 2**32

#: The longest run name, in bytes (UTF-8): the longest file named after it, the temporary copy of its claim
#: (``.<run-name>.wf-claim.XXXXXXXX.tmp``, 23 bytes more), then fits the usual file-name limit of 255 bytes.
RUN_NAME_MAX_BYTES = 200

_BOOL_SETTINGS = ("flip", "tta_flip", "compile", "save_checkpoints", "write_log", "resume", "overwrite", "progress")
_UNSET_FIELDS = tuple(DEFAULTS)
# fields that define what is trained: a resumed run must agree with its checkpoint on all of them
_RUN_FIELDS = (*_UNSET_FIELDS, "seed", "model_overrides")
_EXEMPT_ON_RESUME = ("compile", "time_limit_s", "eval_batch_size", "precision", "bf16", "threads")
#: The precision each value of the old ``bf16`` setting names, and back (``fp16`` has no old name: ``False``).
_BF16_TO_PRECISION = {True: "bf16", False: "fp32", "auto": "auto"}
_PRECISION_TO_BF16 = {"bf16": True, "fp32": False, "fp16": False, "auto": "auto", None: None}


@dataclass
class TrainConfig:
    """Everything a training run needs. Settings left ``None`` take the preset's value, else :data:`DEFAULTS`.

    ``model``: a name of :data:`wf_lessons.models.MODEL_NAMES`; ``model_overrides``: keyword arguments for
    :func:`~wf_lessons.models.build_model` (``drop_path`` is a setting of its own, merged in; an override wins).
    ``lr`` is the peak learning rate, reached after ``warmup_epochs`` and decayed by a cosine to
    ``min_lr_ratio·lr``. ``randaugment_ops`` (0 = off), ``erasing`` (a probability), ``mixup``/``cutmix``
    (Beta alphas, applied to a fraction ``mix_prob`` of the batches) switch the stronger augmentations.
    ``val_images`` (0 = none) holds out a stratified validation split of that many training images
    (:func:`wf_lessons.data.validation_split`, the same for every run): the per-epoch evaluation is then on it, and
    the test set is evaluated once, at the end. ``train_per_class``/``eval_per_class`` keep a balanced subset
    (0 = all) of the training split and of the per-epoch evaluation set; the final test is always the whole test
    set. ``steps_per_epoch`` (0 = all) shortens epochs.
    ``precision``: ``"fp32"``, ``"bf16"`` autocast or ``"fp16"`` autocast with a gradient scaler; ``None``: the
    device's choice (bf16 on GPUs with bfloat16 tensor cores, Ampere and newer; fp16 on older GPUs such as the T4 and
    V100; fp32 on a CPU); ``"auto"``: the same on a GPU, the faster of fp32 and bf16 measured on a CPU.
    ``bf16`` is its old name, still accepted (``True``: ``"bf16"``, ``False``: ``"fp32"``) and kept in step with it.
    ``threads``: CPU threads for torch during the run (0: torch's default). ``time_limit_s`` (0 = none) stops
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
    val_images: int | None = None
    eval_batch_size: int | None = None
    tta_flip: bool | None = None
    compile: bool | None = None
    time_limit_s: float | None = None
    precision: str | None = None
    bf16: bool | str | None = None
    threads: int | str | None = None
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
        """Fill the unset settings from the preset and :data:`DEFAULTS`, then check every setting's type and range
        (one ``ValueError`` naming the setting and what was expected; the command line goes through here too)."""
        if self.preset is not None and (not isinstance(self.preset, str) or self.preset not in PRESETS):
            raise ValueError(f"unknown preset {self.preset!r}; valid presets: {', '.join(PRESETS)}")
        preset = PRESETS.get(self.preset, {}) if self.preset else {}
        self._given = frozenset(name for name in _UNSET_FIELDS if getattr(self, name) is not None)
        self._precision_from_bf16()
        for name in _UNSET_FIELDS:
            if getattr(self, name) is None:
                setattr(self, name, preset.get(name, DEFAULTS[name]))
        self.bf16 = _PRECISION_TO_BF16.get(self.precision, self.bf16)  # the old name, in step
        if isinstance(self.device, torch.device):
            self.device = str(self.device)  # recorded as text in the checkpoint and the run log
        self._check_settings()
        self.augment()  # validates the augmentation settings
        if self.run_name is None:
            self.run_name = f"train-{self.model}-{self.preset or 'custom'}-seed{self.seed}"
        check_run_name(self.run_name)
        if self.resume and self.overwrite:
            raise ValueError("resume and overwrite exclude each other: resume continues a run, overwrite restarts it")

    def _precision_from_bf16(self) -> None:
        """Accept the old ``bf16`` setting as the precision it names; refuse it when it contradicts ``precision``."""
        if self.bf16 is None:
            return
        if not (isinstance(self.bf16, bool) or self.bf16 == "auto"):
            raise ValueError(f"bf16 must be True, False, None (on for CUDA) or 'auto' (measure), got {self.bf16!r}; "
                             f"it is the old name of precision, one of {', '.join(_PRECISIONS)}")
        if self.precision is None:
            self.precision = _BF16_TO_PRECISION[self.bf16]
        elif not isinstance(self.precision, str) or _PRECISION_TO_BF16.get(self.precision) != self.bf16:
            raise ValueError(f"bf16={self.bf16!r} (the old name of precision) contradicts precision="
                             f"{self.precision!r}; give only precision")

    def given_settings(self) -> frozenset[str]:
        """The settings the caller gave (not taken from the preset or :data:`DEFAULTS`): e.g. whether
        ``batch_size`` may be changed when it does not fit in memory."""
        return self._given

    def _check_settings(self) -> None:
        """Every setting's type and range, in one place."""
        if not isinstance(self.model, str) or self.model not in MODEL_NAMES:
            raise ValueError(f"unknown model {self.model!r}; valid models: {', '.join(MODEL_NAMES)}")
        if not isinstance(self.model_overrides, dict):
            raise TypeError(f"model_overrides must be a dict, got {type(self.model_overrides).__name__}")
        if bad := [k for k in self.model_overrides if not isinstance(k, str)]:
            raise TypeError(f"model_overrides must be a dict of keyword arguments (str keys), got key {bad[0]!r}")
        for name in _BOOL_SETTINGS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, {_got(getattr(self, name))}")
        if self.precision is not None and self.precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(_PRECISIONS)} or None (the device's choice: bf16 on "
                             f"Ampere and newer GPUs, fp16 on older ones, fp32 on a CPU), {_got(self.precision)}")
        if self.threads != "auto" and not _is_int(self.threads, low=0):
            raise ValueError(f"threads must be an int >= 0 or 'auto', {_got(self.threads)}")
        for name in ("epochs", "batch_size", "eval_batch_size", "randaugment_ops", "train_per_class", "eval_per_class",
                     "steps_per_epoch", "val_images"):
            low = 1 if name in ("epochs", "batch_size", "eval_batch_size") else 0
            if not _is_int(getattr(self, name), low):
                raise ValueError(f"{name} must be an int >= {low}, {_got(getattr(self, name))}")
        if not _is_int(self.seed, 0) or self.seed >= SEED_LIMIT:
            raise ValueError(f"seed must be an int in [0, 2**32), {_got(self.seed)}")
        # far above any useful value; larger ones overflow float32 in the optimizer
        _check_number("lr", self.lr, lambda v: 0 < v <= 1e6, "a number in (0, 1e6]")
        for name in ("weight_decay", "warmup_epochs", "grad_clip"):  # mixup/cutmix: BatchAugment checks them
            _check_number(name, getattr(self, name), lambda v: 0 <= v < math.inf, "a finite number >= 0")
        _check_number("time_limit_s", self.time_limit_s, lambda v: v >= 0, ">= 0 (0: no limit)")
        for name in ("min_lr_ratio", "erasing", "mix_prob"):
            _check_number(name, getattr(self, name), lambda v: 0 <= v <= 1, "in [0, 1]")
        for name in ("label_smoothing", "ema_decay", "drop_path"):  # 1 would leave nothing to learn or keep
            _check_number(name, getattr(self, name), lambda v: 0 <= v < 1, "in [0, 1)")
        _check_number("randaugment_magnitude", self.randaugment_magnitude, lambda v: 0 <= v <= 10,
                      "a number in [0, 10]")
        for name in ("num_classes", "img_size"):  # used here (labels, crop size) before the model checks the rest
            if name in self.model_overrides:
                check_int(name, self.model_overrides[name])
        side = self.img_size()
        if not _is_int(self.crop_padding, 0) or self.crop_padding > side // 2:
            raise ValueError(f"crop_padding must be an int in [0, {side // 2}] (at most half of the model's img_size "
                             f"{side}, so that every crop keeps a quarter of the image), {_got(self.crop_padding)}")
        folder = self.checkpoint_dir
        text = os.fspath(folder) if isinstance(folder, (str, os.PathLike)) else None
        if folder is not None and (not isinstance(text, str) or not text.strip() or "\0" in text):
            raise ValueError("checkpoint_dir must be a folder (a non-empty str or Path; None: data/checkpoints), "
                             f"{_got(folder)}")
        if self.device is not None and not isinstance(self.device, str):
            raise ValueError(f"device must be a str such as 'cpu' or 'cuda' (None: cuda when available), "
                             f"{_got(self.device)}")

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
            num_classes=self.num_classes(),
        )

    def num_classes(self) -> int:
        """The number of classes of the model this configuration builds."""
        return int(self.model_overrides.get("num_classes", _model_setting(self.model, "num_classes")))

    def img_size(self) -> int:
        """The image side the model this configuration builds is made for (its ``img_size``)."""
        return int(self.model_overrides.get("img_size", _model_setting(self.model, "img_size")))

    def checkpoint_path(self) -> Path:
        folder = Path(self.checkpoint_dir) if self.checkpoint_dir is not None else wf_config.checkpoints_dir()
        return folder / f"{self.run_name}.pt"

    def log_path(self) -> Path:
        return wf_config.runs_dir() / f"{self.run_name}.json"

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-friendly values."""
        d = dataclasses.asdict(self)
        d["checkpoint_dir"] = None if self.checkpoint_dir is None else str(self.checkpoint_dir)
        return d


# ------------------------------------------------------------------------------------------ checks
def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _got(value: Any) -> str:
    """``got <value>``, with its type when that is not plain (``got '1e-3' (a str)``)."""
    plain = value is None or isinstance(value, (bool, int, float))
    return f"got {value!r}" + ("" if plain else f" (a {type(value).__name__})")


def _check_number(name: str, value: Any, ok: Any, expected: str) -> None:
    """Refuse ``value`` unless it is a real number (an int or a float, not a bool) for which ``ok`` holds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ValueError(f"{name} must be {expected}, {_got(value)}")


def _model_setting(model: str, name: str) -> Any:
    """A keyword argument of a named model: its configuration's value, else its class's default."""
    cls, kwargs = CONFIGS[model]
    return kwargs[name] if name in kwargs else inspect.signature(cls).parameters[name].default


def check_run_name(name: Any) -> str:
    """``name`` if it can name a run's files: a plain file name (no folder, ``..``, leading ``.`` or control
    character such as a newline) of at most :data:`RUN_NAME_MAX_BYTES` bytes; else ``ValueError``."""
    plain = (isinstance(name, str) and name.strip() and not name.startswith(".")
             and not any(c in name for c in "/\\:") and not any(unicodedata.category(c) == "Cc" for c in name))
    try:
        size = len(os.fsencode(name)) if plain else 0
    except UnicodeEncodeError:  # a lone surrogate: no file can be named so
        plain = False
    if not plain:
        raise ValueError(f"run_name must be a plain file name (no folder, '..', leading '.' or control character), "
                         f"got {name!r}")
    if size > RUN_NAME_MAX_BYTES:
        raise ValueError(f"run_name must be at most {RUN_NAME_MAX_BYTES} bytes long (in UTF-8), so that every file "
                         f"named after it fits the file-name limit; got {size} bytes ({name[:40]!r}...)")
    return name

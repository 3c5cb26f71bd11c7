"""Training on CIFAR-10: one pipeline for WeightFormer and DeiT, so that their comparison is fair.

The recipe (chapter 07 explains every piece): the whole split on the device, augmented there with batched tensor
ops (random crop + flip from :mod:`wf_lessons.data`; RandAugment, random erasing, mixup/CutMix from
:mod:`wf_lessons.augment`, each switchable); cross-entropy with label smoothing; AdamW without weight decay on
norms, biases and other 1-D parameters; linear warm-up then cosine decay, per iteration; gradient clipping;
drop-path; optional EMA of the weights; autocast by what the GPU can do (bf16 on Ampere and newer, fp16 with a
gradient scaler on older GPUs such as the T4 and V100; ``precision`` chooses); optional ``torch.compile``, which falls
back to eager mode when it fails; a first step that runs out of memory finds the batch that fits; optional flip
test-time augmentation at evaluation.

Every epoch ends with an atomic checkpoint (``wf_lessons.atomic``: temporary file + rename), so Ctrl-C or a crash
leaves the last good one; ``resume=True`` continues a run exactly (model, optimizer, schedule, EMA, epoch and random
states are restored; on CPU the losses match an uninterrupted run bit for bit). Every run writes a JSON run log under
``data/runs/`` (:mod:`wf_lessons.runlog`) unless ``write_log=False``.

The parts, each short enough to read in one sitting: :mod:`~wf_lessons.train.recipe` (settings, presets,
``TrainConfig``), :mod:`~wf_lessons.train.steps` (optimiser, schedule, one step, evaluation),
:mod:`~wf_lessons.train.machine` (precision by device, threads; measured on CPUs),
:mod:`~wf_lessons.train.fallback` (compile to eager, halving a batch that does not fit),
:mod:`~wf_lessons.train.checkpoint`,
:mod:`~wf_lessons.train.loop` (``train``), :mod:`~wf_lessons.train.cli` (the command line, ``--dry-run``:
:mod:`~wf_lessons.train.dryrun`), :mod:`~wf_lessons.train.gpu` (the gpu preset's estimate) and
:mod:`~wf_lessons.train.curves` (accuracy curves from run logs).

Python::

    from wf_lessons.train import TrainConfig, train, load_model
    log = train(TrainConfig(model="wf-cifar-tiny", preset="quick-cpu"))
    model = load_model("data/checkpoints/<run_name>.pt")

Command line (ends with one line ``test_acc=0.5612 epochs=... wall_s=...``)::

    python -m wf_lessons.train --preset quick-cpu --model wf-cifar-tiny --seed 0
    python -m wf_lessons.train --preset gpu --model deit-cifar --seed 1
    python -m wf_lessons.train ... --resume          # continue from the run's last checkpoint
    python -m wf_lessons.train --preset gpu --dry-run   # the gpu preset's whole code path at toy size
    python -m wf_lessons.train --preset gpu --dry-run --precision fp16   # ... as a T4 runs it
"""

from __future__ import annotations

from wf_lessons.train.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, load_checkpoint, load_model
from wf_lessons.train.cli import config_from_args, main
from wf_lessons.train.curves import epoch_accuracies, plot_curves
from wf_lessons.train.dryrun import dry_run
from wf_lessons.train.fallback import CompileFallback, largest_fitting_batch
from wf_lessons.train.gpu import GPU_ASSUMED_RATES, GPU_PRESET_REASONING, gpu_preset_estimate
from wf_lessons.train.loop import TrainingDiverged, train
from wf_lessons.train.machine import PRECISIONS, choose_precision, cpu_has_native_bf16
from wf_lessons.train.recipe import DEFAULTS, PRESETS, TrainConfig
from wf_lessons.train.steps import build_optimizer, evaluate, predict, train_step, warmup_cosine

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "CompileFallback",
    "DEFAULTS",
    "GPU_ASSUMED_RATES",
    "GPU_PRESET_REASONING",
    "PRECISIONS",
    "PRESETS",
    "TrainConfig",
    "TrainingDiverged",
    "build_optimizer",
    "choose_precision",
    "config_from_args",
    "cpu_has_native_bf16",
    "dry_run",
    "epoch_accuracies",
    "evaluate",
    "gpu_preset_estimate",
    "largest_fitting_batch",
    "plot_curves",
    "load_checkpoint",
    "load_model",
    "main",
    "predict",
    "train",
    "train_step",
    "warmup_cosine",
]

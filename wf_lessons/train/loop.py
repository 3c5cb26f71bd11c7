"""The training loop: the data on the device, the model with its optimiser, schedule and optional EMA, epochs that
end in an atomic checkpoint, and the run log.

:func:`train` claims the run name (a second process with the same name is refused at once), refuses to overwrite
a finished run, resumes exactly from a checkpoint, stops with :class:`TrainingDiverged` on a non-finite training or
test loss, and records every start or resume as a *segment* with the machine settings it used: its precision and
why (:func:`wf_lessons.train.machine.choose_precision`), threads, and whether ``torch.compile`` ran or failed.

When the machine cannot do what was asked it falls back instead of crashing (:mod:`wf_lessons.train.fallback`): a
compiler that fails on the first step leaves the run in eager mode (``compile: "failed (<reason>)"`` in the log);
a first step that runs out of memory finds the largest batch that fits by halving and either trains with it, the
learning rate scaled with the batch (when the batch came from the preset or the defaults), or stops and says which
batch to pass (when it was set). A float16 run's gradient scaler skips a step whose loss or gradients overflowed,
which is not divergence; a non-finite loss while the scale is already below :data:`FP16_SETTLED_SCALE` is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from wf_lessons import atomic, runlog
from wf_lessons import config as wf_config
from wf_lessons.complexity import count_flops
from wf_lessons.data import DeviceLoader, check_labels, cifar10, describe_source, normalize, validation_split
from wf_lessons.models import WeightFormer, build_model, count_parameters, prediction_norm_ratios, predictions_off
from wf_lessons.train import fallback, machine
from wf_lessons.train.checkpoint import (
    load_checkpoint,
    load_weights,
    restore_rng,
    resume_problems,
    rng_state,
    save_checkpoint,
)
from wf_lessons.train.recipe import TrainConfig
from wf_lessons.train.steps import build_optimizer, evaluate, train_step, warmup_cosine

__all__ = ["FP16_SETTLED_SCALE", "TrainingDiverged", "train", "claim_paths", "TRAIN_EVAL_PER_CLASS", "PROBE_IMAGES"]

Data = tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]

#: A float16 run whose loss is not finite while its gradient scaler's scale is below this has diverged: the scaler
#: has backed off 16 times from its start (65,536) without the loss becoming finite, and at a scale below 1 it no
#: longer amplifies anything, so the overflow is not the scaling's.
FP16_SETTLED_SCALE = 1.0

_CLI_COMMAND: str | None = None  # set by the command line so that the run log records it


class TrainingDiverged(RuntimeError):
    """The training or the test loss became NaN or infinite; the run log is marked ``"diverged"``."""


class _FirstStepOutOfMemory(Exception):
    """The first training step of a segment ran out of memory (handled by :func:`train`)."""


def train(config: TrainConfig, data: Data | None = None) -> dict[str, Any]:
    """Train ``config.model`` on CIFAR-10 (or on ``data``) and return the run log (also written unless
    ``config.write_log`` is False).

    ``data``: optional ``((train_images, train_labels), (test_images, test_labels))``, uint8 ``(N, 3, H, W)`` and
    int64 ``(N,)`` tensors, used instead of CIFAR-10 (tests, small experiments). Raises ``ValueError`` for settings
    that cannot work, ``FileExistsError`` rather than overwrite a run (or while another process trains it),
    ``DataNotFoundError`` without the data, :class:`TrainingDiverged` on a non-finite training or test loss.
    Resuming a run that is already complete changes nothing and returns its log. A first step that runs out of memory
    is retried with the largest batch that fits (halved, the learning rate scaled with it) when ``batch_size`` came
    from the preset or the defaults; when it was set, ``ValueError`` says which batch fits.
    """
    start = time.perf_counter()
    cfg = config
    device = wf_config.device(cfg.device)
    _check_checkpoint_folder(cfg)
    if data is not None:
        _check_data(cfg, data)
    _check_paths(cfg)  # before claiming, and again while the claim is held
    with _claim(cfg):
        _check_paths(cfg)
        ckpt = load_checkpoint(cfg.checkpoint_path()) if cfg.resume else None
        if ckpt is not None:
            if problems := resume_problems(ckpt, cfg):
                raise ValueError(f"cannot resume {cfg.checkpoint_path()}: it was made with other settings ("
                                 + "; ".join(problems) + ")")
            if ckpt["epoch"] >= cfg.epochs and cfg.log_path().is_file() and runlog.read(cfg.log_path())["complete"]:
                if cfg.progress:
                    print(f"{cfg.run_name}: already complete ({ckpt['epoch']} epochs); nothing to do")
                return runlog.read(cfg.log_path())
        given, data = data, _load_data(cfg, data, device)
        side = data.train_x.shape[-1]
        settings = _machine_settings(cfg, device, ckpt, side=side)
        with machine.threads(settings["threads"]):
            try:
                return _train(cfg, data, device, settings, ckpt, start)
            except _FirstStepOutOfMemory:
                pass  # handled below, once the failed step's tensors are released
            data = None
            fallback.free_memory()
            cfg, settings["out_of_memory"] = _smaller_batch(cfg, device, settings["precision"], side,
                                                            resumed=ckpt is not None)
            return _train(cfg, _load_data(cfg, given, device), device, settings, ckpt, start)


def _smaller_batch(cfg: TrainConfig, device: torch.device, precision: str, side: int, resumed: bool
                   ) -> tuple[TrainConfig, str]:
    """After a first step that ran out of memory: the configuration with the largest batch that fits (found by
    halving, :func:`wf_lessons.train.fallback.largest_fitting_batch`) and the learning rate scaled with it, and what
    was done, in words. Raises ``ValueError`` with that advice when the batch was set by the caller or the run is
    resumed (its batch is part of what it trains), or when no batch fits."""
    say = print if cfg.progress else (lambda *_: None)
    asked = cfg.batch_size
    where = f"{cfg.model} on {device} in {precision}"
    try:
        fits, _ = fallback.largest_fitting_batch(_probe_step(cfg, device, precision, side), asked // 2, say=say)
    except (fallback.BatchTooLarge, ValueError) as error:
        raise ValueError(f"{cfg.run_name}: batch {asked} does not fit in memory ({where}), and no smaller batch "
                         f"does either ({error})") from None
    lr = cfg.lr * fits / asked
    note = (f"batch {asked} did not fit in memory ({where}) at the first step; batch {fits} fits (found by halving "
            f"training steps on random images)")
    if resumed or "batch_size" in cfg.given_settings():
        why = "a resumed run keeps its batch" if resumed else "batch_size was set"
        raise ValueError(f"{cfg.run_name}: {note}. Not changed, because {why}: start the run with --batch-size {fits} "
                         f"--lr {lr:.3g} (batch_size={fits}, lr={lr:.3g}: the learning rate scaled with the batch)"
                         + (" and --overwrite" if resumed else "") + ", or use a device with more memory")
    note += f": training with it, learning rate {cfg.lr:.3g} -> {lr:.3g} (scaled with the batch)"
    say(f"{cfg.run_name}: {note}")
    return dataclasses.replace(cfg, batch_size=fits, lr=lr), note


def _probe_step(cfg: TrainConfig, device: torch.device, precision: str, side: int) -> Any:
    """A function of a batch size that takes one eager training step of a fresh copy of the run's model on random
    images ``(batch, 3, side, side)`` (the global random state is left as it was)."""

    def step(batch: int) -> None:
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            model = build_model(cfg.model, **cfg.model_kwargs()).to(device)
            optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
            images = torch.randn(batch, 3, side, side, device=device)
            labels = torch.randint(0, cfg.num_classes(), (batch,), device=device)
            train_step(model, optimizer, images, labels, label_smoothing=cfg.label_smoothing, grad_clip=cfg.grad_clip,
                       precision=precision, scaler=machine.make_scaler(device, precision))
            _sync(device)

    return step


def claim_paths(cfg: TrainConfig) -> list[Path]:
    """The claim files of a run (:func:`wf_lessons.atomic.claim_path`): one beside each thing it writes (its log,
    its checkpoint), once when both are in one folder."""
    paths: list[Path] = []
    for written, on in ((cfg.log_path(), cfg.write_log), (cfg.checkpoint_path(), cfg.save_checkpoints)):
        path = atomic.claim_path(written)
        if on and all(path.parent.resolve() / path.name != p.parent.resolve() / p.name for p in paths):
            paths.append(path)
    return paths


@contextlib.contextmanager
def _claim(cfg: TrainConfig) -> Iterator[None]:
    """The run name's exclusive claim, held in a ``<run-name>.wf-claim`` file beside each thing the run writes."""
    with contextlib.ExitStack() as claims:
        for path in claim_paths(cfg):
            claims.enter_context(atomic.claim(path, f"run {cfg.run_name!r}"))
        yield


def _check_data(cfg: TrainConfig, data: Any) -> None:
    """Refuse data given to :func:`train` that is not two (images, labels) splits with valid labels: int64 class
    indices in ``[0, num_classes)``, one per image (checked once, before the run name is claimed)."""
    if not (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(split, (tuple, list)) and len(split) == 2 for split in data)):
        raise ValueError("data must be ((train_images, train_labels), (test_images, test_labels)), got "
                         f"{type(data).__name__}")
    for (images, labels), what in zip(data, ("training", "test")):
        if not isinstance(images, Tensor) or images.ndim != 4:
            raise ValueError(f"{what} images must be a uint8 tensor (N, 3, H, W), got "
                             f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
        check_labels(labels, images.shape[0], cfg.num_classes(), what=f"{what} labels")


def _check_checkpoint_folder(config: TrainConfig) -> None:
    """Refuse to train without a writable checkpoint folder (found now, not after the first epoch)."""
    folder = config.checkpoint_path().parent
    if config.save_checkpoints and (reason := atomic.writable_folder(folder)) is not None:
        raise ValueError(f"checkpoint_dir {folder} is not writable ({reason}); choose another "
                         "(--checkpoint-dir) or pass save_checkpoints=False (--no-checkpoint)")


def _check_paths(config: TrainConfig) -> None:
    """Refuse to overwrite what a user made, and to resume what does not exist."""
    ckpt, log = config.checkpoint_path(), config.log_path()
    if config.resume:
        if not ckpt.is_file():
            raise FileNotFoundError(f"cannot resume: there is no checkpoint {ckpt} (run name {config.run_name!r})")
    elif not config.overwrite:
        used = ((log, config.write_log), (ckpt, config.save_checkpoints))
        existing = [str(p) for p, on in used if on and p.exists()]
        if existing:
            raise FileExistsError(
                f"run {config.run_name!r} already exists ({', '.join(existing)}); pass resume=True (--resume) to "
                "continue it, overwrite=True (--overwrite) to start it again, or another run_name (--run-name)"
            )


# ------------------------------------------------------------------------------------------------ data
#: Training images (per class) evaluated without augmentation at the end of a run with a validation split, so that
#: its log says whether a gap between models is one of fitting the training data or of generalising.
TRAIN_EVAL_PER_CLASS = 500
#: Images of the per-epoch evaluation set on which a WeightFormer's prediction sizes are logged every epoch.
PROBE_IMAGES = 256


@dataclass
class _Data:
    train_x: Tensor
    train_loader: DeviceLoader
    eval_loader: DeviceLoader  # the per-epoch evaluation: the validation split, else (a subset of) the test set
    test_loader: DeviceLoader
    source: str
    steps: int  # per epoch
    num_eval: int
    num_test: int
    seconds: float
    val_images: int  # 0: no validation split
    probe: Tensor  # (PROBE_IMAGES, 3, H, W) normalised images of the evaluation set, for prediction sizes
    train_eval_loader: DeviceLoader | None  # training images without augmentation (runs with a validation split)

    @property
    def split(self) -> str:
        """The per-epoch evaluation set's name, the prefix of its keys in the history: ``val`` or ``test``."""
        return "val" if self.val_images else "test"


def _per_class(images: Tensor, labels: Tensor, per_class: int) -> tuple[Tensor, Tensor]:
    """The first ``per_class`` images of each class (all when 0), in their original order."""
    if per_class == 0:
        return images, labels
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in labels.unique()]).sort().values
    return images[keep], labels[keep]


def _load_data(cfg: TrainConfig, data: Data | None, device: torch.device) -> _Data:
    """The training split and the evaluation sets on ``device``, checked against the configuration."""
    start = time.perf_counter()
    if data is None:
        (train_x, train_y), (test_x, test_y) = cifar10("train"), cifar10("test")
        source = describe_source()
    else:
        (train_x, train_y), (test_x, test_y) = data
        source = "tensors given to train()"
    top = int(max(train_y.max(), test_y.max()))
    if top >= cfg.num_classes():
        raise ValueError(f"the data has labels up to {top}, but the model has num_classes={cfg.num_classes()}: "
                         f"use num_classes >= {top + 1}")
    if cfg.val_images:
        if cfg.val_images >= train_x.shape[0]:
            raise ValueError(f"val_images {cfg.val_images} leaves nothing of the {train_x.shape[0]} training images")
        keep, held_out = validation_split(train_y, cfg.val_images)
        (train_x, train_y), (eval_x, eval_y) = (train_x[keep], train_y[keep]), (train_x[held_out], train_y[held_out])
    else:
        eval_x, eval_y = test_x, test_y
    train_x, train_y = _per_class(train_x, train_y, cfg.train_per_class)
    if cfg.batch_size > train_x.shape[0]:
        raise ValueError(f"batch_size {cfg.batch_size} is larger than the {train_x.shape[0]} training images")
    eval_x, eval_y = _per_class(eval_x, eval_y, cfg.eval_per_class)

    def loader(x: Tensor, y: Tensor) -> DeviceLoader:
        return DeviceLoader(x, y, min(cfg.eval_batch_size, x.shape[0]), train=False, device=device)

    train_loader = DeviceLoader(train_x, train_y, cfg.batch_size, train=True, device=device, seed=cfg.seed,
                                crop_padding=cfg.crop_padding, flip=cfg.flip)
    eval_loader = loader(eval_x, eval_y)
    test_loader = eval_loader if not cfg.val_images and cfg.eval_per_class == 0 else loader(test_x, test_y)
    train_eval_loader = loader(*_per_class(train_x, train_y, TRAIN_EVAL_PER_CLASS)) if cfg.val_images else None
    steps = len(train_loader) if cfg.steps_per_epoch == 0 else min(cfg.steps_per_epoch, len(train_loader))
    return _Data(train_x, train_loader, eval_loader, test_loader, source, steps, num_eval=int(eval_x.shape[0]),
                 num_test=int(test_x.shape[0]), seconds=time.perf_counter() - start, val_images=cfg.val_images,
                 probe=normalize(eval_x[:PROBE_IMAGES].to(device)), train_eval_loader=train_eval_loader)


# ----------------------------------------------------------------------------------------- settings
def _machine_settings(cfg: TrainConfig, device: torch.device, ckpt: dict[str, Any] | None, side: int
                      ) -> dict[str, Any]:
    """Precision (and why) and threads for this segment of the run: given, kept from the checkpoint, chosen by the
    device (:func:`wf_lessons.train.machine.choose_precision`) or, on a CPU with ``"auto"``, measured."""
    requested, threads, kept = cfg.precision, cfg.threads, False
    if ckpt is not None:  # a resumed run keeps its precision, and its measured threads
        last = ckpt["segments"][-1] if ckpt.get("segments") else ckpt["config"]
        saved = last.get("precision") or {True: "bf16", False: "fp32"}.get(last.get("bf16"))  # older: bf16 only
        if requested in (None, machine.AUTO) and saved in ("bf16", "fp16", "fp32"):
            requested, kept = saved, True
        if threads == machine.AUTO and device.type == "cpu":
            threads = last.get("threads", machine.AUTO)
    if device.type != "cpu":
        threads = 0 if threads == machine.AUTO else threads
    measured: dict[str, Any] = {}
    if device.type == "cpu" and machine.AUTO in (requested, threads):
        bf16 = machine.AUTO if requested == machine.AUTO else requested == "bf16"
        measured = machine.choose_settings(cfg.model, cfg.model_kwargs(), cfg.batch_size, side, bf16, threads)
        threads = measured.pop("threads")
        if requested == machine.AUTO:
            requested = "bf16" if measured.pop("bf16") else "fp32"
            measured["reason"] = "measured: the faster of fp32 and bf16 on this CPU"
        measured.pop("bf16", None)
    choice = machine.choose_precision(device, requested)
    if kept:
        choice["reason"] = f"kept from the checkpoint ({choice['precision']})"
    elif "reason" in measured:
        choice["reason"] = measured.pop("reason")
    if choice["precision"] == "bf16" and device.type == "cpu" and not measured and not kept \
            and not machine.cpu_has_native_bf16():
        warnings.warn("bf16 autocast on a CPU without native bf16 (AVX512-BF16 or AMX) is emulated and slow; "
                      "pass precision='fp32' (--precision fp32)", stacklevel=4)
    return {"precision": choice["precision"], "precision_reason": choice["reason"],
            "bf16": machine.bf16_word(choice["precision"]), "threads": threads, **measured}


# ------------------------------------------------------------------------------------------ training
def _train(cfg: TrainConfig, data: _Data, device: torch.device, settings: dict[str, Any],
           ckpt: dict[str, Any] | None, start: float) -> dict[str, Any]:
    from tqdm.auto import tqdm

    precision = settings["precision"]
    say = tqdm.write if cfg.progress else (lambda *_: None)
    total_steps = data.steps * cfg.epochs
    wf_config.seed_everything(cfg.seed)
    model = build_model(cfg.model, **cfg.model_kwargs()).to(device)
    n_params = count_parameters(model)
    model.eval()  # no drop-path while counting, so the global random state is untouched
    flops = count_flops(model, torch.zeros(1, 3, *data.train_x.shape[-2:], device=device))
    model.train()
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    warmup_steps = min(round(cfg.warmup_epochs * data.steps), total_steps)  # a warm-up longer than the run is cut
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup_steps, cfg.min_lr_ratio))
    ema = None
    if cfg.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    scaler = machine.make_scaler(device, precision)
    history: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    start_epoch, train_s = 0, 0.0
    if ckpt is not None:
        load_weights(model, ckpt["model"], f"checkpoint {cfg.checkpoint_path()}")
        restores = {"optimizer": lambda: optimizer.load_state_dict(ckpt["optimizer"]),
                    "scheduler": lambda: scheduler.load_state_dict(ckpt["scheduler"]),
                    "random-number generator": lambda: restore_rng(ckpt["rng"])}
        if ema is not None:
            restores["EMA"] = lambda: ema.load_state_dict(ckpt["ema"])
        if scaler is not None and ckpt.get("scaler") is not None:  # a float16 run continues with its loss scale
            restores["gradient-scaler"] = lambda: scaler.load_state_dict(ckpt["scaler"])
        for part, restore in restores.items():  # the weights were verified on load; the rest is checked here
            try:
                restore()
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError) as error:
                raise ValueError(f"checkpoint {cfg.checkpoint_path()} cannot be resumed: its {part} state is "
                                 f"damaged ({type(error).__name__}: {error})") from None
        history, start_epoch, train_s = list(ckpt["history"]), ckpt["epoch"], ckpt["train_s"]
        segments = list(ckpt.get("segments", []))
    compiled = fallback.CompileFallback(model, cfg.compile, device, say)
    eval_model = ema.module if ema is not None else model

    env = runlog.environment(device)
    env["command"] = _CLI_COMMAND if _CLI_COMMAND is not None else f"python: wf_lessons.train.train({_short_repr(cfg)})"
    segments.append({"from_epoch": start_epoch, "command": env["command"], "started": env["started"],
                     "git_commit": env["git_commit"], "device": env["device"], "compile": compiled.status,
                     **settings})
    say(f"{cfg.run_name}: {cfg.model} ({n_params:,} parameters, {flops / 1e6:,.1f} MFLOPs/image) on {env['device']}"
        f", {data.train_x.shape[0]:,} training images, {cfg.epochs} epochs of {data.steps} steps of "
        f"{cfg.batch_size}; precision {precision}: {settings['precision_reason']}")

    def checkpoint(epoch: int) -> None:
        segments[-1] |= {"to_epoch": epoch, "compile": compiled.status}
        save_checkpoint(cfg.checkpoint_path(), {
            "model_name": cfg.model, "model_overrides": cfg.model_kwargs(), "config": cfg.to_dict(),
            "epoch": epoch, "steps_per_epoch": data.steps, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "ema": ema.state_dict() if ema is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_state(), "history": history, "train_s": train_s, "segments": segments,
        })

    stopped, diverged = None, None
    bar_args = {} if cfg.progress else {"disable": True}  # otherwise tqdm reads TQDM_DISABLE itself
    with tqdm(total=total_steps, initial=start_epoch * data.steps, unit="step", dynamic_ncols=True, **bar_args) as bar:
        for epoch in range(start_epoch, cfg.epochs):
            bar.set_description(f"epoch {epoch + 1}/{cfg.epochs}")
            row = _epoch(cfg, data, device, epoch, compiled, optimizer, scheduler, ema, precision, scaler, bar,
                         first=epoch == start_epoch)
            eval_start, metrics = time.perf_counter(), None
            if row["train_loss"] is not None:  # the last update can still ruin the weights: check the test loss
                metrics = evaluate(eval_model, data.eval_loader, precision=precision)
            if metrics is None or not math.isfinite(metrics["loss"]):
                what = "training" if metrics is None else "test"
                diverged = f"non-finite {what} loss in epoch {epoch + 1}: the run diverged (lower lr?)"
                say(diverged)
                break
            train_s += row["epoch_s"]
            split = data.split
            row |= {f"{split}_loss": metrics["loss"], f"{split}_acc": metrics["accuracy"],
                    "eval_images": metrics["images"]}
            if (norms := _prediction_norms(eval_model, data.probe)) is not None:
                row["prediction_norms"] = norms
            now = time.perf_counter()
            row |= {"train_s": train_s, "eval_s": now - eval_start, "wall_s": now - start}
            history.append(row)
            say(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
                f"{split} ({row['eval_images']} images) loss {metrics['loss']:.4f} acc {metrics['accuracy']:.4f} | "
                f"{row['images_per_s']:.0f} img/s, {row['epoch_s']:.1f} s")
            if cfg.save_checkpoints:
                checkpoint(epoch + 1)
            next_epoch_s = 1.1 * (row["epoch_s"] + row["eval_s"])
            elapsed = time.perf_counter() - start
            if cfg.time_limit_s and epoch + 1 < cfg.epochs and elapsed + next_epoch_s > cfg.time_limit_s:
                stopped = f"time limit {cfg.time_limit_s:.0f} s: stopped after epoch {epoch + 1} (resume to continue)"
                say(stopped)
                break

    segments[-1] |= {"to_epoch": len(history), "compile": compiled.status}
    log = _run_log(cfg, env, data, eval_model, precision, n_params, flops, history, segments, train_s, start,
                   stopped=stopped, diverged=diverged)
    if cfg.write_log:
        runlog.write(log, cfg.run_name)
    if diverged:
        marked = f"; the log marks it as diverged ({runlog.portable(cfg.log_path())})" if cfg.write_log else ""
        raise TrainingDiverged(f"{cfg.run_name}: {diverged}{marked}")
    return log


def _epoch(cfg: TrainConfig, data: _Data, device: torch.device, epoch: int, compiled: fallback.CompileFallback,
           optimizer: torch.optim.Optimizer, scheduler: Any, ema: Any, precision: str,
           scaler: torch.amp.GradScaler | None, bar: Any, first: bool) -> dict[str, Any]:
    """One epoch of training; its metrics (``train_loss`` None when the run diverged).

    ``first``: the segment's first epoch, whose first step raises :class:`_FirstStepOutOfMemory` when it does not fit.
    With a gradient scaler (float16) a step whose loss is not finite is skipped by the scaler and left out of the
    mean loss; the epoch records how many there were (``nonfinite_steps``) and the scale at its end (``loss_scale``).
    The run diverged when such a step comes while the scale is below :data:`FP16_SETTLED_SCALE`, or when no step of
    the epoch had a finite loss.
    """
    generator = torch.Generator(device=device).manual_seed(cfg.seed * 1_000_003 + 7919 * (epoch + 1))
    rng = random.Random(cfg.seed * 1_000_003 + epoch)
    augment = cfg.augment()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    nonfinite = torch.zeros((), device=device, dtype=torch.long)  # float16 steps whose loss was not finite
    seen, nonfinite_before = 0, 0
    _sync(device)
    epoch_start = time.perf_counter()
    report_every = max(1, data.steps // 20)
    for step, (images, labels) in enumerate(data.train_loader.epoch(epoch)):
        if step == data.steps:
            break
        images, targets = augment(images, labels, generator, rng)

        def one_step(module: nn.Module, images: Tensor = images, targets: Tensor = targets) -> tuple[Tensor, Tensor]:
            return train_step(module, optimizer, images, targets, label_smoothing=cfg.label_smoothing,
                              grad_clip=cfg.grad_clip, precision=precision, scaler=scaler)

        try:
            loss, logits = compiled.run(one_step)
        except Exception as error:
            if first and step == 0 and fallback.is_out_of_memory(error):
                raise _FirstStepOutOfMemory() from None
            raise
        if scaler is None:
            scheduler.step()
        else:
            with warnings.catch_warnings():  # after a step the scaler skipped, as intended: the schedule goes on
                warnings.filterwarnings("ignore", "Detected call of `lr_scheduler.step", UserWarning)
                scheduler.step()
        if ema is not None:
            ema.update_parameters(compiled.eager)
        if scaler is None:
            loss_sum += loss
        else:  # the scaler skipped a step whose loss overflowed: leave it out of the mean
            finite = torch.isfinite(loss)
            loss_sum += torch.where(finite, loss, torch.zeros_like(loss))
            nonfinite += ~finite
        correct += (logits.argmax(1) == labels).sum()
        seen += labels.shape[0]
        bar.update(1)
        if (step + 1) % report_every == 0 or step + 1 == data.steps:
            skipped = int(nonfinite.item()) if scaler is not None else 0  # one sync every 5% of the epoch
            mean_loss = loss_sum.item() / max(1, step + 1 - skipped)
            if not math.isfinite(mean_loss) or (skipped > nonfinite_before
                                                and scaler.get_scale() < FP16_SETTLED_SCALE):
                return {"train_loss": None}
            nonfinite_before = skipped
            bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{correct.item() / seen:.3f}",
                            img_s=f"{seen / (time.perf_counter() - epoch_start):.0f}")
    _sync(device)
    epoch_s = time.perf_counter() - epoch_start
    row = {"epoch": epoch + 1, "train_loss": None, "train_acc": correct.item() / seen,
           "lr": scheduler.get_last_lr()[0], "epoch_s": epoch_s, "images_per_s": seen / epoch_s}
    if scaler is None:
        return row | {"train_loss": loss_sum.item() / data.steps}
    skipped = int(nonfinite.item())
    if skipped == data.steps:  # not one finite loss: nothing was learned this epoch
        return {"train_loss": None}
    return row | {"train_loss": loss_sum.item() / (data.steps - skipped), "nonfinite_steps": skipped,
                  "loss_scale": scaler.get_scale()}


def _prediction_norms(model: nn.Module, probe: Tensor) -> dict[str, dict[str, float]] | None:
    """A WeightFormer's ‖Ŵ‖/‖W0‖ and ‖K̂‖/‖K0‖ per dynamic block on the probe images (None for other models)."""
    if not isinstance(model, WeightFormer) or not model.dynamic_blocks:
        return None
    return {str(i): r for i, r in prediction_norm_ratios(model, probe).items()}


def _run_log(cfg: TrainConfig, env: dict[str, Any], data: _Data, eval_model: nn.Module, precision: str,
             n_params: int,
             flops: int, history: list[dict[str, Any]], segments: list[dict[str, Any]], train_s: float,
             start: float, *, stopped: str | None, diverged: str | None) -> dict[str, Any]:
    """The run log: provenance, configuration, per-epoch history and the final evaluation on the whole test set."""
    eval_start = time.perf_counter()
    if diverged:
        final: dict[str, Any] = {"test_loss": None, "test_acc": None, "test_images": data.num_test}
    else:
        metrics = evaluate(eval_model, data.test_loader, precision=precision)
        final = {"test_loss": metrics["loss"], "test_acc": metrics["accuracy"], "test_images": metrics["images"]}
        if cfg.tta_flip:
            flipped = evaluate(eval_model, data.test_loader, tta_flip=True, precision=precision)
            final["test_acc_tta_flip"] = flipped["accuracy"]
        if data.train_eval_loader is not None:
            final |= _diagnostics(eval_model, data.eval_loader, data.train_eval_loader, precision)
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
        "bf16": machine.bf16_word(precision),  # the old field, kept for readers of older logs
        "precision": precision,
        "precision_reason": segments[-1]["precision_reason"],
        "compile": segments[-1]["compile"],
        "segments": segments,
        "config": cfg.to_dict(),
        "data": {"source": data.source, "train_images": int(data.train_x.shape[0]), "test_images": data.num_test,
                 "val_images": data.val_images, "epoch_eval_split": data.split,
                 "eval_images_per_epoch": data.num_eval, "steps_per_epoch": data.steps},
        "epochs": history,
        "epochs_done": len(history),
        "complete": len(history) == cfg.epochs,
        "diverged": diverged,
        "stopped": stopped,
        "resumed_from_epoch": segments[-1]["from_epoch"] if segments[-1]["from_epoch"] > 0 else None,
        "evaluated_model": "ema" if cfg.ema_decay > 0 else "model",
        **final,
        "train_s": train_s,
        "data_s": data.seconds,
        "checkpoint": runlog.portable(cfg.checkpoint_path()) if cfg.save_checkpoints else None,
    }
    log["wall_s"] = time.perf_counter() - start
    log["process_wall_s"] = _process_age_s() if _CLI_COMMAND is not None else None
    return log


def _diagnostics(model: nn.Module, val_loader: DeviceLoader, train_eval_loader: DeviceLoader, precision: str
                 ) -> dict[str, Any]:
    """What a run with a validation split adds to its log: validation accuracy of the final model, and of the same
    model with every prediction forced to zero (WeightFormers with dynamic blocks); accuracy on training images
    without augmentation (``train_eval_acc``), to tell a gap in fitting from a gap in generalising."""
    out = {"val_acc": evaluate(model, val_loader, precision=precision)["accuracy"]}
    if isinstance(model, WeightFormer) and model.dynamic_blocks:
        with predictions_off(model):
            out["val_acc_predictions_off"] = evaluate(model, val_loader, precision=precision)["accuracy"]
    train_eval = evaluate(model, train_eval_loader, precision=precision)
    return out | {"train_eval_acc": train_eval["accuracy"], "train_eval_images": train_eval["images"]}


def _short_repr(cfg: TrainConfig) -> str:
    """``TrainConfig(...)`` with only the settings that differ from what model, preset and seed give."""
    base = TrainConfig(model=cfg.model, preset=cfg.preset, seed=cfg.seed).to_dict()
    given = {k: v for k, v in cfg.to_dict().items() if k in ("model", "preset", "seed") or v != base[k]}
    return "TrainConfig(" + ", ".join(f"{k}={v!r}" for k, v in given.items()) + ")"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _process_age_s() -> float | None:
    """Seconds since this process started (Linux), so the CLI's wall time includes Python and torch imports."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None

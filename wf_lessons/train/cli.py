"""The command line ``python -m wf_lessons.train``: every setting of :class:`TrainConfig` as an option, presets,
model overrides, resume/overwrite, and ``--dry-run`` (the preset's whole code path at toy size)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import shlex
import sys
from typing import Any

from wf_lessons.data import DataNotFoundError
from wf_lessons.models import MODEL_NAMES
from wf_lessons.train import loop
from wf_lessons.train.dryrun import dry_run
from wf_lessons.train.machine import PRECISIONS
from wf_lessons.train.recipe import DEFAULTS, PRESETS, TrainConfig

__all__ = ["config_from_args", "main"]

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
    "eval_per_class": "per-epoch evaluation on N images per class of its set (0: all); the final test uses all",
    "val_images": "hold out N training images (stratified) for the per-epoch evaluation; test once at the end",
    "steps_per_epoch": "stop each epoch after N steps (0: full epochs)",
    "eval_batch_size": "evaluation batch size",
    "tta_flip": "also report the final accuracy with flip test-time augmentation",
    "compile": "torch.compile the model for training",
    "time_limit_s": "stop after the last epoch that fits in this many seconds (0: no limit)",
    "precision": "fp32, bf16 (autocast), fp16 (autocast with a gradient scaler) or auto (default: the device's "
                 "choice: bf16 on Ampere and newer GPUs, fp16 on older ones such as the T4 and V100, fp32 on a CPU; "
                 "auto also measures fp32 against bf16 on a CPU)",
    "bf16": "the old name of --precision: --bf16 is --precision bf16, --no-bf16 is --precision fp32",
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
        elif f.name == "precision":
            parser.add_argument(flag, choices=PRECISIONS, default=None, help=_HELP[f.name])
        else:
            typ = {"seed": int, "threads": _int_or_auto}.get(f.name) or (type(kind) if kind is not None else str)
            parser.add_argument(flag, type=typ, default=None, help=_HELP[f.name])
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="model override for build_model, e.g. --override linear_predictor=\"'gap'\" "
                             "(VALUE is a Python literal; a bare word is taken as a string)")
    parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start again, replacing the run's log and checkpoint")
    parser.add_argument("--no-log", action="store_true", help="do not write a run log")
    parser.add_argument("--no-checkpoint", action="store_true", help="do not write checkpoints")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or epoch lines")
    parser.add_argument("--dry-run", action="store_true",
                        help="run the preset's whole code path (compile, precision, augmentations, EMA, evaluation, "
                             "checkpoint, resume) at toy size for a few steps, then exit; writes nothing (with "
                             "--precision fp16: a T4's float16 path with its gradient scaler, on any device)")
    return parser


def _int_or_auto(text: str) -> int | str:
    return text if text == "auto" else int(text)


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
    args.pop("dry_run")
    overrides = dict(_parse_override(o) for o in args.pop("override"))
    flags = {"resume": args.pop("resume"), "overwrite": args.pop("overwrite"), "write_log": not args.pop("no_log"),
             "save_checkpoints": not args.pop("no_checkpoint"), "progress": not args.pop("no_progress")}
    given = {k: v for k, v in args.items() if v is not None}
    return TrainConfig(**given, **flags, model_overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    """The command line: train, print the summary line; exit 2 with a clear message for bad arguments."""
    argv = sys.argv[1:] if argv is None else argv
    loop._CLI_COMMAND = "python -m wf_lessons.train " + " ".join(shlex.quote(a) for a in argv)
    config = None
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.dry_run:
            ignored = [k for k, v in vars(args).items()
                       if k not in ("dry_run", "preset", "model", "device", "precision") and v != parser.get_default(k)]
            if ignored:
                drop = ", ".join("--" + k.replace("_", "-") for k in ignored)
                raise ValueError("--dry-run takes only --preset, --model, --device and --precision (it runs the "
                                 f"preset as it is, at toy size); drop {drop}")
            if not args.preset:
                raise ValueError("--dry-run needs --preset (e.g. --preset gpu)")
            dry_run(args.preset, model=args.model, device=args.device, precision=args.precision)
            return 0
        config = config_from_args(argv)
        log = loop.train(config)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError, PermissionError, DataNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (loop.TrainingDiverged, OSError) as error:  # OSError: a write that failed (a full disk)
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        path = config.checkpoint_path() if config is not None else None
        where = (f"the last good checkpoint is {path}; continue with --resume" if path is not None and path.exists()
                 else "no checkpoint was written yet")
        print(f"\ninterrupted: {where}", file=sys.stderr)
        return 130
    finally:
        loop._CLI_COMMAND = None
    wall = log["process_wall_s"] if log["process_wall_s"] is not None else log["wall_s"]
    print(f"test_acc={log['test_acc']:.4f} epochs={log['epochs_done']} wall_s={wall:.1f} train_s={log['train_s']:.1f} "
          f"run={log['run_name']}")
    return 0

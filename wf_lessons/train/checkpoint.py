"""Training checkpoints: what they hold, writing them atomically, loading them with integrity checks, and
rebuilding the trained model.

A checkpoint is a dict saved with ``torch.save``: ``format``, ``version``, the model's name and overrides, the run's
configuration, ``epoch`` (epochs done), ``steps_per_epoch``, model / optimizer / scheduler / EMA states, random
states, the gradient scaler's state (``scaler``: float16 runs, so that a resumed run keeps its loss scale; None
otherwise), the per-epoch history, the training time, the run's segments (one per start or resume, with the machine
settings each used) and ``digests``: the SHA-256 of each of those parts (:func:`part_digests`), so that everything a
resume restores is verified. Every load checks

- the digests: a part changed after it was written (a flipped byte, scaled optimizer moments, a reset scheduler, a
  forged history or epoch count) is refused with a ``ValueError`` that names the checkpoint and the part;
- that the parts agree: the history has one row per epoch done, the scheduler and the optimizer have taken the same
  number of steps, ``epoch * steps_per_epoch`` (a float16 run's optimizer may have taken fewer: its gradient scaler
  skips the steps that overflowed), and the last segment ends at that epoch;
- that weights and optimizer moments are finite.

Checkpoints of format version 1 (before this file had ``digests``) carry a digest of their weights only. They still
load (their weights verified, their parts checked for agreement), so their models can be evaluated and exported;
resuming one works too, with a warning that its optimizer, schedule and history are not covered by a digest.
"""

from __future__ import annotations

import hashlib
import math
import random
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wf_lessons import atomic, runlog
from wf_lessons.models import build_model
from wf_lessons.train.recipe import _EXEMPT_ON_RESUME, _RUN_FIELDS, DEFAULTS, TrainConfig

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "PART_NAMES",
    "state_digest",
    "part_digests",
    "CheckpointWriteError",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_weights",
    "rng_state",
    "restore_rng",
    "resume_problems",
]

#: The ``format`` entry of every training checkpoint: a file without it is refused as foreign.
CHECKPOINT_FORMAT = "wf-lessons-train-checkpoint"
#: The format version written now. 2: a digest of every part (``digests``); 1: of the weights only (``digest``).
CHECKPOINT_VERSION = 2
_REQUIRED = ("model_name", "model_overrides", "config", "epoch", "model", "optimizer", "scheduler", "rng", "history",
             "train_s")
_UNDIGESTED = ("format", "version", "digest", "digests")
#: How an error message names each part of a checkpoint.
PART_NAMES = {"model": "weights", "ema": "EMA weights", "optimizer": "optimizer state", "scheduler": "scheduler state",
              "rng": "random-number generator state", "history": "history", "epoch": "epoch count",
              "steps_per_epoch": "steps per epoch", "train_s": "training time", "segments": "segments",
              "config": "configuration", "model_name": "model name", "model_overrides": "model overrides",
              "scaler": "gradient-scaler state"}


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state dict's tensors (in key order)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _feed(h: Any, x: Any) -> None:
    """Feed a canonical encoding of ``x`` (tensors, dicts, lists, tuples, numbers, strings, None) to hash ``h``."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(x, dict):
        h.update(f"D{len(x)}:".encode())
        for key in sorted(x, key=lambda k: (type(k).__name__, repr(k))):
            _feed(h, key)
            _feed(h, x[key])
    elif isinstance(x, (list, tuple)):  # one kind: a tuple may come back as a list
        h.update(f"L{len(x)}:".encode())
        for v in x:
            _feed(h, v)
    else:
        text = f"{type(x).__name__}:{x!r}"
        h.update(f"S{len(text)}:{text}".encode())


def part_digests(content: dict[str, Any]) -> dict[str, str]:
    """The SHA-256 of each part of a checkpoint's content (every key but its format, version and digests)."""
    digests = {}
    for key in content:
        if key not in _UNDIGESTED:
            h = hashlib.sha256()
            _feed(h, content[key])
            digests[key] = h.hexdigest()
    return digests


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk): the previous checkpoint, if any, is kept as it was."""


def save_checkpoint(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` (the keys of :data:`_REQUIRED` and more) as a checkpoint, atomically, with the digest of
    each part.

    A write that fails (a full disk) raises :class:`CheckpointWriteError` saying what failed; the previous checkpoint
    is kept as it was (the write is atomic), so the run can be resumed from it.
    """
    try:
        atomic.torch_save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **content,
                           "digests": part_digests(content)}, path)
    except OSError as error:
        cause = error.__cause__
        reason = (cause.strerror if isinstance(cause, OSError) and cause.strerror else
                  f"torch.save failed: {cause}; the disk may be full" if isinstance(cause, RuntimeError) else
                  str(error))
        kept = (f"the previous checkpoint {path} is kept as it was; free some space, then continue the run from it "
                "with --resume (resume=True)" if Path(path).exists() else
                "no checkpoint of this run was written; free some space and start it again")
        raise CheckpointWriteError(f"could not write checkpoint {path} ({reason}): {kept}") from error


def _weights_digest(ckpt: dict[str, Any]) -> str:
    """The digest of the model weights and, when the run keeps one, of the EMA weights."""
    return state_digest(ckpt["model"] | {f"ema:{k}": v for k, v in (ckpt.get("ema") or {}).items()})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A training checkpoint as a dict (tensors on the CPU), verified: clear errors for a missing, foreign,
    incomplete or corrupted file (weights that do not match the stored digest, weights or optimizer state that are
    not finite).

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
    missing = [k for k in _REQUIRED if k not in ckpt]
    if missing:
        raise ValueError(f"checkpoint {path} is incomplete: it lacks {', '.join(missing)}")
    if "digests" in ckpt:
        _verify_digests(ckpt, path)
    elif ckpt.get("version", 1) != 1:
        raise ValueError(f"checkpoint {path} is corrupted: it has no digests (format version {ckpt.get('version')!r})")
    elif "digest" in ckpt and _weights_digest(ckpt) != ckpt["digest"]:
        raise ValueError(f"checkpoint {path} is corrupted: its weights do not match the digest written with them")
    if isinstance(ckpt["epoch"], bool) or not isinstance(ckpt["epoch"], int) or ckpt["epoch"] < 0:
        raise ValueError(f"checkpoint {path} is corrupted: its epoch count is {ckpt['epoch']!r}, not an int >= 0")
    if problems := _disagreements(ckpt):
        raise ValueError(f"checkpoint {path} is corrupted: its parts disagree ({'; '.join(problems)})")
    tensors = ckpt["model"] | {f"ema {k}": v for k, v in (ckpt.get("ema") or {}).items()} | _optimizer_tensors(ckpt)
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"checkpoint {path} holds non-finite weights or optimizer state (in {', '.join(bad[:3])}"
                         f"{', ...' if len(bad) > 3 else ''}): the run diverged or the file is corrupted")
    return ckpt


def _verify_digests(ckpt: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose parts do not match the digests written with them, naming the parts."""
    stored = ckpt["digests"]
    if not isinstance(stored, dict) or not all(isinstance(v, str) for v in stored.values()):
        raise ValueError(f"checkpoint {path} is corrupted: its digests are not a table of SHA-256 digests")
    now = part_digests(ckpt)
    changed = [k for k in now if k in stored and now[k] != stored[k]]
    added, lost = [k for k in now if k not in stored], [k for k in stored if k not in now]
    if changed or added or lost:
        def names(keys: list[str]) -> str:
            return ", ".join(PART_NAMES.get(k, repr(k)) for k in keys)

        what = ([f"the digests written with it do not match its {names(changed)}"] if changed else []) + \
               ([f"it holds parts no digest was written for ({names(added)})"] if added else []) + \
               ([f"it lacks parts it was written with ({names(lost)})"] if lost else [])
        raise ValueError(f"checkpoint {path} is corrupted: " + "; ".join(what))


def _optimizer_steps(optimizer: Any) -> list[float] | None:
    """The step count of each parameter the optimizer has state for (None when its state is not readable)."""
    state = optimizer.get("state") if isinstance(optimizer, dict) else None
    if not isinstance(state, dict):
        return None
    steps = []
    for entries in state.values():
        step = entries.get("step") if isinstance(entries, dict) else None
        if isinstance(step, torch.Tensor) and step.numel() == 1:
            step = step.item()
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            return None
        steps.append(float(step))
    return steps


def _disagreements(ckpt: dict[str, Any]) -> list[str]:
    """What does not add up between a checkpoint's epoch count, history, scheduler, optimizer and segments."""
    epoch, history, problems = ckpt["epoch"], ckpt["history"], []
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        return ["its history is not a list of epochs"]
    if len(history) != epoch or [row.get("epoch") for row in history] != list(range(1, epoch + 1)):
        problems.append(f"the history holds epochs {[row.get('epoch') for row in history][:6]} but the epoch count "
                        f"is {epoch}")
    scheduler = ckpt["scheduler"]
    last = scheduler.get("last_epoch") if isinstance(scheduler, dict) else None
    if isinstance(last, bool) or not isinstance(last, int):
        return [*problems, f"its scheduler state has no step count (last_epoch {last!r})"]
    per_epoch = ckpt.get("steps_per_epoch")
    if per_epoch is not None and (isinstance(per_epoch, bool) or not isinstance(per_epoch, int) or per_epoch < 1):
        problems.append(f"its steps per epoch are {per_epoch!r}, not an int >= 1")
    elif per_epoch is not None and last != epoch * per_epoch:
        problems.append(f"the scheduler has taken {last} steps, not {epoch} epochs x {per_epoch} steps")
    elif per_epoch is None and (last < 0 or (epoch == 0) != (last == 0) or (epoch and last % epoch)):
        problems.append(f"the scheduler has taken {last} steps, not a whole number of steps per epoch for {epoch} "
                        "epochs")
    if isinstance(scheduler.get("_step_count"), int) and scheduler["_step_count"] != last + 1:
        problems.append(f"the scheduler's step counts disagree (last_epoch {last}, _step_count "
                        f"{scheduler['_step_count']})")
    steps = _optimizer_steps(ckpt["optimizer"])
    taken = max(steps) if steps else 0.0
    skips = ckpt.get("scaler") is not None  # a float16 run's gradient scaler skips the steps that overflowed
    if steps is None:
        problems.append("its optimizer state has no readable step counts")
    elif (taken > last if skips else taken != last) or any(s < 0 for s in steps):
        problems.append(f"the optimizer has taken {taken:g} steps but the scheduler {last}"
                        + (" (a gradient scaler skips steps, it never adds them)" if skips else ""))
    segments = ckpt.get("segments")
    if segments and isinstance(segments, list) and isinstance(segments[-1], dict) \
            and segments[-1].get("to_epoch") != epoch:
        problems.append(f"the last segment ends at epoch {segments[-1].get('to_epoch')!r}, not {epoch}")
    train_s = ckpt["train_s"]
    if isinstance(train_s, bool) or not isinstance(train_s, (int, float)) or not math.isfinite(train_s) \
            or train_s < 0:
        problems.append(f"its training time is {train_s!r}, not a finite number >= 0")
    return problems


def _optimizer_tensors(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The optimizer's per-parameter state tensors (AdamW's moments), named ``optimizer <param> <key>``."""
    state = ckpt["optimizer"].get("state") if isinstance(ckpt["optimizer"], dict) else None
    return {f"optimizer {index} {key}": t for index, entries in (state or {}).items() if isinstance(entries, dict)
            for key, t in entries.items() if isinstance(t, torch.Tensor)}


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
    load_weights(model, state, f"checkpoint {checkpoint_path}")
    return model.to(device).eval()


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state)`` with an error that names ``source`` and the keys or shapes that differ."""
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [f"{k}: {tuple(state[k].shape)} where the model has {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = ([f"missing {', '.join(missing[:4])}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected[:4])}"] if unexpected else []) + shapes[:4]
        raise ValueError(f"{source} does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state)


def rng_state() -> dict[str, Any]:
    """The random states a resume restores: torch's CPU generator, Python's ``random`` and, once CUDA is in use,
    every GPU's generator (``{"torch", "python"[, "cuda"]}``)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Set the random states saved by :func:`rng_state` (as a checkpoint stores them: tuples may come back as
    lists)."""
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def resume_problems(ckpt: dict[str, Any], config: TrainConfig) -> list[str]:
    """What differs between a checkpoint and the configuration that wants to continue it.

    A checkpoint of format version 1 (its digest covers only the weights) is accepted with a warning.
    """
    if "digests" not in ckpt:
        warnings.warn(f"resuming checkpoint {config.checkpoint_path()} of format version 1: its weights are verified, "
                      "but its optimizer, schedule and history are not covered by a digest (only checked for "
                      "agreement); checkpoints written from now on are verified in full", stacklevel=3)
    if ckpt["model_name"] != config.model or ckpt["model_overrides"] != config.model_kwargs():
        return [
            f"the checkpoint is of model {ckpt['model_name']!r} with overrides {ckpt['model_overrides']}, "
            f"not {config.model!r} with {config.model_kwargs()}"
        ]
    saved, now = ckpt["config"], config.to_dict()
    return [
        f"{name}: checkpoint {saved.get(name, DEFAULTS.get(name))!r}, now {now[name]!r}"
        for name in _RUN_FIELDS  # a setting newer than the checkpoint had its default value then
        if name not in _EXEMPT_ON_RESUME and saved.get(name, DEFAULTS.get(name)) != now[name]
    ]

"""Training checkpoints: what they hold, writing them atomically, loading them with integrity checks, and
rebuilding the trained model.

A checkpoint is a dict saved with ``torch.save``: ``format``, ``version``, the model's name and overrides, the run's
configuration, ``epoch`` (epochs done), model / optimizer / scheduler / EMA states, random states, the per-epoch
history, the run's segments (one per start or resume, with the machine settings each used) and ``digest``, the
SHA-256 of the model weights, checked on every load.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wf_lessons import atomic, runlog
from wf_lessons.models import build_model
from wf_lessons.train.recipe import _EXEMPT_ON_RESUME, _RUN_FIELDS, DEFAULTS, TrainConfig

CHECKPOINT_FORMAT = "wf-lessons-train-checkpoint"
CHECKPOINT_VERSION = 1
_REQUIRED = ("model_name", "model_overrides", "config", "epoch", "model", "optimizer", "scheduler", "rng", "history",
             "train_s")


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state dict's tensors (in key order)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` (the keys of :data:`_REQUIRED` and more) as a checkpoint, atomically, with its digest."""
    atomic.torch_save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **content,
                       "digest": _weights_digest(content)}, path)


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
    if "digest" in ckpt and _weights_digest(ckpt) != ckpt["digest"]:
        raise ValueError(f"checkpoint {path} is corrupted: its weights do not match the digest written with them")
    if isinstance(ckpt["epoch"], bool) or not isinstance(ckpt["epoch"], int) or ckpt["epoch"] < 0:
        raise ValueError(f"checkpoint {path} is corrupted: its epoch count is {ckpt['epoch']!r}, not an int >= 0")
    tensors = ckpt["model"] | {f"ema {k}": v for k, v in (ckpt.get("ema") or {}).items()} | _optimizer_tensors(ckpt)
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise ValueError(f"checkpoint {path} holds non-finite weights or optimizer state (in {', '.join(bad[:3])}"
                         f"{', ...' if len(bad) > 3 else ''}): the run diverged or the file is corrupted")
    return ckpt


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
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def resume_problems(ckpt: dict[str, Any], config: TrainConfig) -> list[str]:
    """What differs between a checkpoint and the configuration that wants to continue it."""
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

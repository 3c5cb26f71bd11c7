"""``--dry-run``: a preset's whole code path at toy size, so that a first real run cannot fail on a bug.

The preset's model family shrunk to width 32 and depth 3 (one dynamic block), a few steps per epoch, two epochs:
``torch.compile`` and bf16 autocast when the preset uses them (on a CPU too; ``precision="fp16"``: the float16 path
of a T4-class GPU, with its gradient scaler saved and restored), every augmentation the preset
switches on, EMA, per-epoch and final evaluation, an atomic checkpoint after epoch 1, a stop there (as a time
limit would) and a resume to epoch 2. Checkpoints go to a temporary folder; no run log is written.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from wf_lessons.models import CONFIGS, ViT
from wf_lessons.train.loop import train
from wf_lessons.train.recipe import PRESETS, TrainConfig

__all__ = ["TOY", "dry_run"]

#: The toy size of a dry run: model overrides for the preset's model (a ViT also gets ``num_heads=2``).
TOY = {"embed_dim": 32, "depth": 3}


def dry_run(preset: str, model: str | None = None, device: str | None = None, steps: int = 3,
            progress: bool = True, precision: str | None = None) -> dict[str, Any]:
    """Run ``preset`` (with ``model``, default the preset's) at toy size; returns the final run log (not written).

    ``precision``: as :class:`~wf_lessons.train.TrainConfig`'s; by default the preset's, and ``bf16`` for a preset
    that compiles and leaves the precision to the device (the GPU path of an Ampere or newer GPU).

    Raises whatever a real run of this preset would raise on its code path.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    full = TrainConfig(preset=preset, model=model)
    toy = TOY | ({"num_heads": 2} if CONFIGS[full.model][0] is ViT else {})
    say = print if progress else (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="wf-dry-run-") as folder:
        base = {"preset": preset, "model": full.model, "model_overrides": toy, "epochs": 2, "steps_per_epoch": steps,
                "batch_size": min(full.batch_size, 64), "eval_per_class": 5, "checkpoint_dir": folder,
                "write_log": False, "run_name": f"dry-run-{preset}-{full.model}", "device": device,
                "precision": precision or ("bf16" if full.precision in (None, "bf16") and full.compile
                                           else full.precision), "progress": False}
        start = time.perf_counter()
        first = train(TrainConfig(**base, time_limit_s=1e-9))  # stops after epoch 1, like a time limit
        if first["epochs_done"] != 1 or first["stopped"] is None:
            raise RuntimeError(f"dry run: expected a stop after epoch 1, got {first['epochs_done']} epochs")
        log = train(TrainConfig(**base, resume=True))
        if log["epochs_done"] != 2 or not log["complete"]:
            raise RuntimeError(f"dry run: the resumed run did not complete ({log['epochs_done']} epochs)")
    precision_used = log["precision"] + (" autocast" if log["precision"] != "fp32" else "") + \
        (" with a gradient scaler (saved and restored)" if log["precision"] == "fp16" else "")
    compiled = "torch.compile" if log["compile"] == "on" else f"torch.compile {log['compile']}"
    switched = [name for name, on in ((compiled, full.compile), (precision_used, log["precision"] != "fp32"),
                                      (f"RandAugment x{full.randaugment_ops}", full.randaugment_ops),
                                      (f"random erasing {full.erasing}", full.erasing),
                                      (f"mixup {full.mixup}", full.mixup), (f"CutMix {full.cutmix}", full.cutmix),
                                      (f"drop-path {full.drop_path}", full.drop_path),
                                      (f"EMA {full.ema_decay}", full.ema_decay),
                                      (f"label smoothing {full.label_smoothing}", full.label_smoothing)) if on]
    say(f"dry run of preset {preset!r} ({full.model} at toy size {toy}) on {log['device']}: "
        f"2 epochs of {steps} steps, evaluation, checkpoint, stop and resume: ok in "
        f"{time.perf_counter() - start:.0f} s")
    say(f"exercised: {', '.join(switched) or 'no optional feature'}")
    return log

"""One optimisation step and evaluation: AdamW groups, the warm-up + cosine schedule, ``train_step``,
``predict`` and ``evaluate``."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["AUTOCAST_DTYPES", "autocast", "build_optimizer", "warmup_cosine", "train_step", "predict", "evaluate"]

#: The autocast dtype of each precision (``fp32``: no autocast); :mod:`wf_lessons.train.machine` chooses one.
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def _precision(precision: str | None, bf16: bool) -> str:
    """``precision``, else the one the old ``bf16`` flag names; ``ValueError`` for an unknown name."""
    precision = precision if precision is not None else ("bf16" if bf16 else "fp32")
    if precision not in AUTOCAST_DTYPES:
        raise ValueError(f"precision must be one of {', '.join(AUTOCAST_DTYPES)}, got {precision!r}")
    return precision


def autocast(device_type: str, precision: str) -> torch.autocast:
    """``torch.autocast`` to ``precision``'s dtype on ``device_type`` (disabled for ``fp32``)."""
    dtype = AUTOCAST_DTYPES[precision]
    return torch.autocast(device_type=device_type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


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
    precision: str | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[Tensor, Tensor]:
    """One optimisation step on a batch; returns the (detached) loss (a 0-D float32 tensor) and logits ``(B, K)``.

    ``images`` ``(B, 3, H, W)``; ``targets``: int64 labels ``(B,)`` or probabilities ``(B, K)`` (mixing).
    ``precision``: ``"fp32"``, ``"bf16"`` or ``"fp16"`` autocast of the forward pass (``None``: what the old flag
    ``bf16`` says). ``scaler`` (float16 runs): the loss is multiplied by the scaler's scale before the backward pass,
    the gradients are unscaled before clipping, and the scaler skips the update when a gradient is not finite (and
    halves its scale), as ``torch.amp.GradScaler`` does.
    """
    with autocast(images.device.type, _precision(precision, bf16)):
        logits = model(images)
    loss = F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        if grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)  # skipped when a gradient is inf or NaN
        scaler.update()
    return loss.detach(), logits.detach()


@torch.no_grad()
def predict(
    model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], *, tta_flip: bool = False, bf16: bool = False,
    precision: str | None = None,
) -> tuple[Tensor, Tensor]:
    """Logits ``(N, K)`` (float32, on the CPU) and labels ``(N,)`` for every batch of ``loader``, in eval mode.

    ``tta_flip`` averages the logits of each image and its mirror image. ``precision`` as in :func:`train_step`.
    """
    precision = _precision(precision, bf16)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    all_logits, all_labels = [], []
    try:
        for images, labels in loader:
            images = images.to(device)
            with autocast(device.type, precision):
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
    model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]], *, tta_flip: bool = False, bf16: bool = False,
    precision: str | None = None,
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of ``model`` over ``loader``: ``{"loss", "accuracy", "images"}``."""
    logits, labels = predict(model, loader, tta_flip=tta_flip, bf16=bf16, precision=precision)
    return {
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": (logits.argmax(1) == labels).float().mean().item(),
        "images": int(labels.numel()),
    }


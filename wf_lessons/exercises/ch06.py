"""Chapter 06 exercises: the gpu preset's schedule, the smoothed-loss floor, flip TTA, weight-decay groups."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from wf_lessons.exercises import check_callable, check_number, report
from wf_lessons.models import build_model
from wf_lessons.train import PRESETS, build_optimizer, predict

__all__ = ["check_exercise"]

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
    5. The ``cpu`` preset with batch 256 instead of 128: ``(optimizer steps per epoch, steps in the whole run)``.
    """
    if number not in (1, 2, 3, 4, 5):
        raise ValueError(f"chapter 06 has exercises 1, 2, 3, 4 and 5, got {number!r}")
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
    elif number == 5:
        per_epoch = 50_000 // 256  # the training loader drops the last partial batch
        expected = (per_epoch, per_epoch * PRESETS["cpu"]["epochs"])
        if not isinstance(answer, tuple) or len(answer) != 2:
            ok, message = False, f"expected a pair (steps per epoch, steps in the run), got {answer!r}"
        elif tuple(answer) == expected:
            ok, message = True, (f"correct: {expected[0]} steps per epoch, {expected[1]:,} in all: half the steps of "
                                 "batch 128, each on twice the images")
        else:
            ok, message = False, f"not quite: {answer} (steps per epoch = 50,000 // batch size, drop the remainder)"
    else:
        expected = _no_decay_count()
        correct = f"{expected:,} parameters, all in norms, biases and other 1-D tensors"
        ok, message = check_number(answer, expected, integer=True, correct=correct, answer_format=",")
    return report(number, ok, message)

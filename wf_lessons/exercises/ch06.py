"""Chapter 06 exercises: theoretical receptive fields, a static WeightFormer, the ERF display, the ERF map built
by hand, and a prediction of which released layer reaches further at initialisation."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from wf_lessons.erf import DISPLAY_POWER, effective_receptive_field, outside_share, theoretical_rf_box
from wf_lessons.exercises import check_callable, check_number, judge_prediction, report, wrong_type

__all__ = ["check_exercise", "check_prediction"]


def _exercise_answers() -> dict[int, Any]:
    class _Static:  # a stand-in with the attributes theoretical_rf_box reads
        def __init__(self, depth: int, patch: int) -> None:
            self.patch_size, self.blocks = patch, [None] * depth

    box = theoretical_rf_box(_Static(13, 2), (128, 128))
    # the smallest depth whose box covers a 128 x 128 image at patch 2 (the centre token is 32 of 0..63)
    depth = next(d for d in range(1, 100) if theoretical_rf_box(_Static(d, 2), (128, 128)) == (0, 128, 0, 128))
    return {1: box.size[0], 2: depth, 3: True, 4: (1e-10) ** DISPLAY_POWER}


def _erf_variant(model: Any, images: Tensor, *, relu_score: bool = True, relu_grad: bool = True,
                 mean: bool = True, absolute: bool = False) -> Tensor:
    """The raw ERF map with the method's steps switched on or off, to name a learner's slip."""
    x = images.detach().clone().requires_grad_(True)
    features = model.forward_features(x)
    h, w = features.shape[-2:]
    centre = features[:, :, h // 2, w // 2]
    (grad,) = torch.autograd.grad((centre.relu() if relu_score else centre).sum(), x)
    grad = grad.abs() if absolute else grad.relu() if relu_grad else grad
    total = grad.sum(dim=(0, 1))
    return total / images.shape[0] if mean else total


def _check_erf_map(answer: Callable[[Any, Tensor], Tensor]) -> tuple[bool, str]:
    from wf_lessons.models import WeightFormer

    gen = torch.Generator().manual_seed(5)
    for size, depth, predictors in ((16, 2, {}), (20, 1, {"linear_predictor": "static", "dwc_predictor": "conv"})):
        torch.manual_seed(depth)
        model = WeightFormer(img_size=size, patch_size=2, num_classes=10, embed_dim=8, depth=depth, **predictors).eval()
        images = torch.randn(3, 3, size, size, generator=gen)
        expected = effective_receptive_field(model, images)
        got = answer(model, images)
        if not isinstance(got, Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__
            return False, (f"for images of shape {tuple(images.shape)} expected a map (H, W) = "
                           f"{tuple(expected.shape)}, got {shape}")
        got = got.detach().float().cpu()
        if torch.allclose(got, expected, rtol=1e-4, atol=1e-9 + 1e-5 * float(expected.max())):
            continue
        slips = {
            "ReLU the gradient before summing (only pixels that raise the score count)": {"relu_grad": False},
            "ReLU the gradient, do not take its absolute value": {"absolute": True},
            "average over the images (divide the sum by B)": {"mean": False},
            "apply the ReLU to the central token's channels before summing them": {"relu_score": False},
        }
        for advice, switches in slips.items():
            slip = _erf_variant(model, images, **switches).detach()
            if torch.allclose(got, slip, rtol=1e-4, atol=1e-9 + 1e-5 * float(slip.abs().max())):
                return False, f"not quite: {advice}"
        return False, (f"not quite: for images of shape {tuple(images.shape)} your map differs from the package's by "
                       f"up to {(got - expected).abs().max():.3g} (its maximum is {expected.max():.3g})")
    return True, "correct: the central token's positive channels, back-propagated, positive part, mean over images"


@functools.cache
def _released_shares() -> dict[str, float]:
    """Outside shares at initialisation of the two released dynamic layers, each with the other layer static, on
    small WeightFormers (exercise 6's set-up: chapter 06's ``images_toy``)."""
    from wf_lessons.models import WeightFormer

    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))  # the chapter's images_toy
    shares = {}
    for kind, predictors in (("linear", {"linear_predictor": "bilateral", "dwc_predictor": "static"}),
                             ("dwc", {"linear_predictor": "static", "dwc_predictor": "adaptive"})):
        torch.manual_seed(0)
        model = WeightFormer(img_size=32, patch_size=2, embed_dim=16, depth=3, **predictors)
        shares[kind] = outside_share(effective_receptive_field(model, images), model)
    return shares


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before section 4 with the measurement (exercise 6: ``"linear"``, ``"dwc"`` or
    ``"about the same"`` (within a factor of 10), which released layer reaches further outside the static field at
    initialisation)."""
    if number != 6:
        raise ValueError(f"chapter 06 has a prediction for exercise 6 only, got {number!r}")
    shares = _released_shares()
    ratio = shares["dwc"] / shares["linear"]
    outcome = "dwc" if ratio > 10 else "linear" if ratio < 0.1 else "about the same"
    return judge_prediction(number, prediction, outcome, ("linear", "dwc", "about the same"),
                            why="the dynamic linear layer's prediction starts orders of magnitude below W0 (chapter "
                                "02), while the DWC predictor's 1×1 convs keep PyTorch's default initialisation and "
                                "start large next to K0 (chapter 03)")


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 06; prints why, returns True when it is right.

    1. The all-static ``wf-cifar`` model (depth 13, patch 2) on 128×128 images: how many pixels wide is the
       theoretical receptive field of the central output token? (an int)
    2. Same patch and image size: the smallest depth whose theoretical field covers the whole image? (an int)
    3. A WeightFormer whose dynamic blocks use ``linear_predictor="static"`` and ``dwc_predictor="static"``: is its
       raw map exactly zero outside the theoretical field? (a bool)
    4. Under the ``x^0.2 / max`` display, at what fraction of full brightness is a pixel whose raw value is 1e-10
       of the maximum shown? (a float)
    5. A function ``erf_map(model, images)``: the raw ERF map ``(H, W)`` (a callable, built).
    6. The outside share of the small adaptive-DWC WeightFormer over that of the small bilateral-linear one, at
       initialisation (a float; predicted before section 4, see :func:`check_prediction`).
    """
    if number not in (1, 2, 3, 4, 5, 6):
        raise ValueError(f"chapter 06 has exercises 1 to 6, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 5:
        return report(number, *check_callable(answer, _check_erf_map, signature="erf_map(model, images)"))
    if number == 6:
        shares = _released_shares()
        expected = shares["dwc"] / shares["linear"]
        return report(number, *check_number(answer, expected, integer=False, rel_tol=1e-3,
                                            correct=f"{expected:.3g}: the DWC reaches {expected:.1e} times further"))
    expected = _exercise_answers()[number]
    if number == 3:
        if not isinstance(answer, bool):
            ok, message = False, wrong_type("a bool", answer)
        elif answer == expected:
            ok, message = True, "correct: LayerNorm and static layers act per token; only a predictor reaches further"
        else:
            ok, message = False, "not quite: which layers of such a block mix tokens when both predictors are static?"
    elif number == 4:
        correct = f"{expected:.3g} of full brightness — visible, yet 1e-10 of the peak"
        ok, message = check_number(answer, expected, integer=False, rel_tol=1e-3, correct=correct)
    else:
        ok, message = check_number(answer, expected, integer=True)
    return report(number, ok, message)

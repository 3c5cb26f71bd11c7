"""Chapter 03 exercises: counting a dynamic depthwise convolution, pooling bins, a per-image conv by hand, the
`adaptive` kernels built from the layer's parameters, and a prediction of how its FLOPs grow."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from wf_lessons.dynamic_dwconv import AdaptiveDWConv, flop_counts, per_sample_depthwise_conv
from wf_lessons.exercises import check_callable, check_number, judge_prediction, report, wrong_type

__all__ = ["check_exercise", "check_prediction"]


def _verdict(ok: bool, answer: object, hint: str) -> tuple[bool, str]:
    return ok, "correct" if ok else f"not quite: {answer!r} is not it ({hint})"


def _exercise_1(answer: object) -> tuple[bool, str]:
    expected = sum(p.numel() for p in AdaptiveDWConv(384).parameters())
    return _verdict(answer == expected, answer, "two C x C 1x1 convs, one of them with a bias, then K0 and b")


def _exercise_2(answer: object) -> tuple[bool, str]:
    jacobian = torch.autograd.functional.jacobian(lambda t: F.adaptive_avg_pool2d(t, 3), torch.zeros(1, 1, 32, 32))
    cells_per_pixel = (jacobian.reshape(9, 32, 32) != 0).sum(dim=0)  # (1, 1, 3, 3, 1, 1, 32, 32) -> (9, 32, 32)
    expected = int((cells_per_pixel > 1).sum())
    return _verdict(answer == expected, answer, "which rows and which columns belong to two bins?")


def _exercise_3(conv_fn: object) -> tuple[bool, str]:
    if not callable(conv_fn):
        return False, f"not quite: {wrong_type('a function conv_fn(x, kernels, bias)', conv_fn)}"
    gen = torch.Generator().manual_seed(3)
    for shape in [(1, 1, 1, 1), (2, 3, 5, 7), (3, 4, 16, 16)]:
        x = torch.randn(shape, generator=gen)
        kernels, bias = torch.randn(*shape[:2], 3, 3, generator=gen), torch.randn(shape[1], generator=gen)
        expected = per_sample_depthwise_conv(x, kernels, bias)
        got = conv_fn(x, kernels, bias)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            return False, f"not quite: for x of shape {shape} expected a tensor of shape {tuple(expected.shape)}"
        if not torch.allclose(got, expected, atol=1e-5, rtol=1e-5):
            return False, f"not quite: for x of shape {shape} max |Δ| = {(got - expected).abs().max():.2e}"
    return True, "correct"


def _exercise_4(answer: object) -> tuple[bool, str]:
    expected = flop_counts(AdaptiveDWConv(192), torch.zeros(1, 192, 14, 14))["prediction"]
    return _verdict(answer == expected, answer, "a 1x1 conv is a C x C matmul at each of the 9 pooled cells")


def _growth() -> float:
    """Total FLOPs of ``adaptive`` at C = 192 on a 32×32 map over those on a 16×16 map."""
    small, large = (flop_counts(AdaptiveDWConv(192), torch.zeros(1, 192, s, s))["total"] for s in (16, 32))
    return large / small


def _exercise_5(answer: object) -> tuple[bool, str]:
    growth = _growth()
    ok, message = check_number(answer, growth, integer=False, rel_tol=1e-6)
    if ok:
        message = f"correct: {growth:.3f}: the convolution grows 4×, the prediction not at all"
    return ok, message


def _check_adaptive_kernels(kernels_fn) -> tuple[bool, str]:
    gen = torch.Generator().manual_seed(6)
    for channels, hw in ((4, (6, 6)), (8, (11, 7)), (3, (32, 32))):
        torch.manual_seed(channels)
        layer = AdaptiveDWConv(channels)
        with torch.no_grad():  # a K0 far from its tiny initialisation, so that forgetting it shows
            layer.w.copy_(torch.randn(layer.w.shape, generator=gen))
        x = torch.randn(2, channels, *hw, generator=gen)
        with torch.no_grad():
            expected = layer.predicted_kernels(x)
            got = kernels_fn(layer, x)
        if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            return False, (f"not quite: for x of shape {(2, channels, *hw)} expected kernels (B, C, 3, 3) = "
                           f"{tuple(expected.shape)}, got {shape}")
        got = got.detach()
        if torch.allclose(got, expected, atol=1e-5, rtol=1e-5):
            continue
        with torch.no_grad():
            raw = layer.raw_kernels(x)
            slips = {
                "add the static kernel K0 (layer.w)": layer.dynamic_kernels(x),
                "normalise the prediction: K̃ / (‖K̃‖ + 1), the norm over the 3×3 taps of each sample and channel":
                    layer.w.squeeze(1) + raw,
                "the norm runs over the 3×3 taps of one kernel (dim=(-2, -1)), not over the whole batch":
                    layer.w.squeeze(1) + raw / (raw.norm() + 1),
            }
        for advice, slip in slips.items():
            if torch.allclose(got, slip, atol=1e-5, rtol=1e-5):
                return False, f"not quite: {advice}"
        return False, (f"not quite: for x of shape {(2, channels, *hw)} your kernels differ from the layer's by up to "
                       f"{(got - expected).abs().max():.2e}")
    return True, "correct: pool to 3×3, predict with 1×1 convs, normalise per sample and channel, add K0"


def _exercise_6(answer: object) -> tuple[bool, str]:
    return check_callable(answer, _check_adaptive_kernels, signature="adaptive_kernels(layer, x)")


_EXERCISES = {1: _exercise_1, 2: _exercise_2, 3: _exercise_3, 4: _exercise_4, 5: _exercise_5, 6: _exercise_6}


def check_prediction(number: int, prediction: object) -> bool:
    """Compare a prediction written before section 7 with the measurement (exercise 5: ``"less than 4"``, ``"4"``
    or ``"more than 4"``, how the total FLOPs of ``adaptive`` grow from a 16×16 to a 32×32 map)."""
    if number != 5:
        raise ValueError(f"chapter 03 has a prediction for exercise 5 only, got {number!r}")
    growth = _growth()
    outcome = "4" if abs(growth - 4) < 1e-9 else "less than 4" if growth < 4 else "more than 4"
    return judge_prediction(number, prediction, outcome, ("less than 4", "4", "more than 4"),
                            why="the prediction runs on the 3×3 pooled map whatever the size; only the convolution "
                                "grows with the pixels")


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 03; prints why, returns True when it is right.

    1. The parameter count of ``adaptive`` at C = 384 (an int).
    2. The number of pixels of a 32 x 32 map that ``AdaptiveAvgPool2d(3)`` averages into more than one cell (an int).
    3. A function ``conv_fn(x, kernels, bias)``: the per-image depthwise conv without ``conv2d`` or ``unfold``.
    4. The FLOPs ``FlopCounterMode`` counts for the ``adaptive`` prediction at C = 192, one image (an int).
    5. The ratio of the ``adaptive`` layer's total FLOPs at C = 192 on a 32×32 map to those on a 16×16 map (a float;
       predicted before section 7, see :func:`check_prediction`).
    6. A function ``adaptive_kernels(layer, x)``: the kernels ``K0 + K̂`` ``(B, C, 3, 3)`` of an ``adaptive`` layer
       for a batch ``x``, from the layer's parameters (a callable, built).
    """
    if number not in _EXERCISES:
        raise ValueError(f"chapter 03 has exercises 1, 2, 3, 4, 5 and 6, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    return report(number, *_EXERCISES[number](answer))

"""Chapter 05 exercises: theoretical receptive fields, a static WeightFormer, the ERF display."""

from __future__ import annotations

from typing import Any

from wf_lessons.erf import DISPLAY_POWER, theoretical_rf_box
from wf_lessons.exercises import check_number, report, wrong_type

__all__ = ["check_exercise"]


def _exercise_answers() -> dict[int, Any]:
    class _Static:  # a stand-in with the attributes theoretical_rf_box reads
        def __init__(self, depth: int, patch: int) -> None:
            self.patch_size, self.blocks = patch, [None] * depth

    box = theoretical_rf_box(_Static(13, 2), (128, 128))
    # the smallest depth whose box covers a 128 x 128 image at patch 2 (the centre token is 32 of 0..63)
    depth = next(d for d in range(1, 100) if theoretical_rf_box(_Static(d, 2), (128, 128)) == (0, 128, 0, 128))
    return {1: box.size[0], 2: depth, 3: True, 4: (1e-10) ** DISPLAY_POWER}


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 05; prints why, returns True when it is right.

    1. The all-static ``wf-cifar`` model (depth 13, patch 2) on 128×128 images: how many pixels wide is the
       theoretical receptive field of the central output token? (an int)
    2. Same patch and image size: the smallest depth whose theoretical field covers the whole image? (an int)
    3. A WeightFormer whose dynamic blocks use ``linear_predictor="static"`` and ``dwc_predictor="static"``: is its
       raw map exactly zero outside the theoretical field? (a bool)
    4. Under the ``x^0.2 / max`` display, at what fraction of full brightness is a pixel whose raw value is 1e-10
       of the maximum shown? (a float)
    """
    if number not in (1, 2, 3, 4):
        raise ValueError(f"chapter 05 has exercises 1, 2, 3 and 4, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
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

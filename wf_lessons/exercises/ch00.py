"""Chapter 00 exercises: counting tokens (``envcheck.tokens``)."""

from __future__ import annotations

from wf_lessons.envcheck import tokens
from wf_lessons.exercises import check_number, report

__all__ = ["check_exercise"]

_EXERCISES = {
    1: ("tokens of a 32x32 CIFAR-10 image with patch size 2", tokens(32, 2), True),
    2: ("tokens of a 224x224 ImageNet image with patch size 16", tokens(224, 16), True),
    3: ("times more entries in the N x N attention matrix at 448 px than at 224 px (patch 16)",
        (tokens(448, 16) / tokens(224, 16)) ** 2, False),
}


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 00; prints why, returns True when it is right.

    1. The number of tokens of a 32×32 CIFAR-10 image with patch size 2 (an int).
    2. The number of tokens of a 224×224 ImageNet image with patch size 16 (an int).
    3. How many times more entries the N×N attention matrix has at 448 px than at 224 px, patch 16 (a number).
    """
    if number not in _EXERCISES:
        raise ValueError(f"chapter 00 has exercises 1, 2 and 3, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    what, expected, integer = _EXERCISES[number]
    ok, message = check_number(answer, expected, integer=integer, abs_tol=1e-9, correct=f"{what} = {expected:g}")
    return report(number, ok, message)

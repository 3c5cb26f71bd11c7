"""Chapter 07 exercises: reading the predictor study and the long CPU runs, and a predictor's parameter cost.

The answers are computed from the committed run logs (``data/runs/``), so they follow the runs the course holds.
"""

from __future__ import annotations

from wf_lessons import ablate, runlog
from wf_lessons.exercises import check_number, report, wrong_type
from wf_lessons.models import build_model, count_parameters

__all__ = ["check_exercise"]


def _study() -> dict:
    return runlog.read(ablate.summary_name("study-cpu"))


def _cpu_difference_points() -> float:
    wf = runlog.read("train-wf-cifar-cpu-cpu-seed0")["test_acc"]
    static = runlog.read("train-wf-cifar-cpu-all-static-cpu-seed0")["test_acc"]
    return 100 * (wf - static)


def _bilateral_cost() -> int:
    return count_parameters(build_model("wf-cifar-study")) - count_parameters(
        build_model("wf-cifar-study", linear_predictor="static"))


def check_exercise(number: int, answer: object) -> bool:
    """Check an answer to an exercise of chapter 07; prints why, returns True when it is right.

    1. In the study, by how many accuracy points does the ``released`` WeightFormer beat the ``all-static``
       control, mean over seeds? (a float; negative if it loses)
    2. Is that difference real by the chapter's rule (every seed of one beats every seed of the other)? (a bool)
    3. How many parameters does the ``bilateral`` dynamic-linear predictor add to ``wf-cifar-study``, compared
       with the same model whose dynamic blocks use ``linear_predictor="static"``? (an int)
    4. In the ``cpu`` preset's runs (15 epochs), by how many points does ``wf-cifar-cpu`` beat its all-static
       control? (a float)
    """
    if number not in (1, 2, 3, 4):
        raise ValueError(f"chapter 07 has exercises 1, 2, 3 and 4, got {number!r}")
    if answer is None:
        return report(number, False, "no answer yet")
    if number == 1:
        expected = ablate.compare(_study(), "released")["diff_points"]
        ok, message = check_number(answer, expected, integer=False, abs_tol=0.01,
                                   correct=f"{expected:+.2f} points (mean over seeds)")
        if not ok and isinstance(answer, (int, float)) and abs(answer * 100 - expected) < 0.01:
            message = "not quite: in points, please (multiply the accuracy difference by 100)"
    elif number == 2:
        expected = ablate.compare(_study(), "released")["real"]
        if not isinstance(answer, bool):
            ok, message = False, wrong_type("a bool", answer)
        else:
            ok = answer == expected
            message = ("correct: " if ok else "not quite: ") + (
                "the seeds' ranges do not overlap" if expected else "the seeds' ranges overlap: not distinguishable")
    elif number == 3:
        expected = _bilateral_cost()
        ok, message = check_number(answer, expected, integer=True, answer_format=",",
                                   correct=f"{expected:,} parameters: the predictor and its normalisation")
    else:
        expected = _cpu_difference_points()
        ok, message = check_number(answer, expected, integer=False, abs_tol=0.01,
                                   correct=f"{expected:+.2f} points after 15 epochs (one seed)")
    return report(number, ok, message)

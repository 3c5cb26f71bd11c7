"""Exercise checkers for every chapter, and the helpers they share.

Each chapter's exercises are checked by ``wf_lessons.exercises.chNN.check_exercise(number, answer)``: the expected
values and the tests a submitted function must pass live there, beside the exercises, not in the library modules
that coursework imports. One module per chapter (``ch00`` ... ``ch08``). They share:

- :func:`check_number` compares a numeric answer with the expected one and says why it is wrong;
- :func:`check_callable` rejects an answer that is not a function before testing it;
- :func:`wrong_type` words the "expected ..., got T" message;
- :func:`report` prints ``exercise N: message`` and returns the verdict.

A checker returns ``(ok, message)``, so that it can be tested without capturing output::

    ok, message = check_number(answer, 1152, integer=True)
    return report(2, ok, message)  # prints "exercise 2: correct: 1152"

Every ``check_exercise`` prints ``exercise N: no answer yet`` and returns False for ``None`` (the value an
unsolved exercise cell assigns), and raises ``ValueError`` for an exercise number the chapter does not have.

**Two kinds of exercise every chapter from 01 on has** (``tests/test_exercise_design.py`` checks both, by these
markers in the chapter's source):

- a **build** exercise: the learner writes a piece of the mechanism. Its solution cell is tagged ``solution`` *and*
  ``build``, defines the function (``def name(...)``) and binds it to the answer, ``answer_N = name``; a later cell
  calls ``check_exercise(N, answer_N)``, which runs it on random inputs against the package's implementation and
  says what is wrong (a shape, a missing step) when it differs.
- a **predict-first** exercise: a code cell tagged ``predict`` assigns the learner's guess, ``prediction_N = None``
  (the learner replaces ``None``), *before* the section that answers it, and names that section in a line
  ``# answered in: <its heading>`` (a ``##`` or ``###`` heading that comes after the cell). After that heading, a
  cell calls ``check_prediction(N, prediction_N)``: the chapter's checker measures the outcome with the package and
  :func:`judge_prediction` says whether the guess was right. The measured answer itself is checked by
  ``check_exercise(N, answer_N)`` as usual.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["check_callable", "check_number", "judge_prediction", "report", "wrong_type"]


def wrong_type(expected: str, answer: object) -> str:
    """The message for an answer of the wrong type: ``expected {expected}, got {type name}``.

    >>> wrong_type("an int", 2.0)
    'expected an int, got float'
    """
    return f"expected {expected}, got {type(answer).__name__}"


def check_number(
    answer: object,
    expected: float,
    *,
    integer: bool,
    rel_tol: float | None = None,
    abs_tol: float | None = None,
    correct: str | None = None,
    answer_format: str = "",
) -> tuple[bool, str]:
    """Compare a numeric ``answer`` with ``expected``; return ``(ok, message)``.

    - ``integer=True`` accepts only an ``int``, ``integer=False`` an ``int`` or a ``float``; a ``bool`` is never a
      number here. Otherwise the message is ``expected an int, got T`` or ``expected a number, got T``.
    - The answer is right when it equals ``expected``, or when ``|answer - expected| < abs_tol``, or when
      ``math.isclose(answer, expected, rel_tol=rel_tol)`` (each tolerance only when given). The message is then
      ``correct: {correct}``, by default ``correct: {expected}``.
    - Otherwise it is ``not quite: {answer} is too large`` (or ``too small``), the answer formatted with
      ``answer_format`` (a format spec such as ``","``).

    >>> check_number(25088, 2 * 196 * 64, integer=True)
    (True, 'correct: 25088')
    >>> check_number(6.4, 6.375, integer=False, abs_tol=1e-3)
    (False, 'not quite: 6.4 is too large')
    """
    if isinstance(answer, bool) or not isinstance(answer, int if integer else (int, float)):
        return False, wrong_type("an int" if integer else "a number", answer)
    if (
        answer == expected
        or (abs_tol is not None and abs(answer - expected) < abs_tol)
        or (rel_tol is not None and math.isclose(answer, expected, rel_tol=rel_tol))
    ):
        return True, f"correct: {expected if correct is None else correct}"
    return False, f"not quite: {answer:{answer_format}} is {'too large' if answer > expected else 'too small'}"


def check_callable(
    answer: object, check: Callable[[Callable[..., Any]], tuple[bool, str]], *, signature: str = ""
) -> tuple[bool, str]:
    """Run ``check(answer)`` when ``answer`` is callable; otherwise return ``(False, "expected a function ...")``.

    ``signature`` names the function asked for, as in ``"causal_mask(n)"``: the message is then
    ``expected a function causal_mask(n), got T`` (``expected a function, got T`` without it).

    >>> check_callable(3, lambda f: (True, "correct"), signature="f(x)")
    (False, 'expected a function f(x), got int')
    """
    if not callable(answer):
        return False, wrong_type(f"a function {signature}".rstrip(), answer)
    return check(answer)


def report(number: int, ok: bool, message: str) -> bool:
    """Print ``exercise {number}: {message}`` and return ``ok``: the last line of every ``check_exercise``."""
    print(f"exercise {number}: {message}")
    return ok


def judge_prediction(
    number: int, prediction: object, outcome: str, options: tuple[str, ...], *, why: str = ""
) -> bool:
    """Say how a prediction written before a section compares with the ``outcome`` measured after it.

    ``options`` are the answers the exercise offers (strings; compared without case and surrounding spaces; a
    number is read as its shortest form, 16.0 as "16");
    ``outcome`` is one of them, measured by the chapter's checker. ``why`` is added when the guess was wrong. Prints
    ``exercise N: ...`` and returns True only for a right guess; ``None`` (no guess written) is never right.

    >>> judge_prediction(5, "grows", "grows", ("grows", "shrinks"))
    exercise 5: you predicted 'grows', the measurement says 'grows': as predicted
    True
    """
    if outcome not in options:
        raise ValueError(f"outcome {outcome!r} is not one of the options {options}")
    if prediction is None:
        return report(number, False, f"no prediction written (prediction_{number} is None); the measurement says "
                                     f"{outcome!r}. Next time, commit to a guess before the section")
    if isinstance(prediction, (int, float)) and not isinstance(prediction, bool):
        prediction = f"{prediction:g}"  # 16 or 16.0 for the option "16"
    if not isinstance(prediction, str) or prediction.strip().lower() not in {o.lower() for o in options}:
        shown = repr(prediction) if isinstance(prediction, str) else type(prediction).__name__
        return report(number, False, f"expected one of {', '.join(map(repr, options))}, got {shown}")
    if prediction.strip().lower() == outcome.lower():
        return report(number, True, f"you predicted {prediction.strip()!r}, the measurement says {outcome!r}: "
                                    "as predicted")
    return report(number, False, f"you predicted {prediction.strip()!r}, the measurement says {outcome!r}: not as "
                                 f"predicted{'; ' + why if why else ''}")

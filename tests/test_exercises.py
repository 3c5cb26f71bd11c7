"""The shared answer checker behind every chapter's ``check_exercise``."""

import importlib

import pytest

from wf_lessons.exercises import check_callable, check_number, report, wrong_type


def test_check_number_accepts_the_right_int():
    assert check_number(25088, 25088, integer=True) == (True, "correct: 25088")
    assert check_number(1152, 1152, integer=True, correct="1,152 tokens") == (True, "correct: 1,152 tokens")


@pytest.mark.parametrize(
    ("answer", "message"),
    [(1152.0, "expected an int, got float"), (True, "expected an int, got bool"), ("1152", "expected an int, got str")],
)
def test_check_number_rejects_non_int_answers(answer, message):
    assert check_number(answer, 1152, integer=True) == (False, message)


@pytest.mark.parametrize(
    ("answer", "message"), [(False, "expected a number, got bool"), ("6.4", "expected a number, got str")]
)
def test_check_number_rejects_non_numbers(answer, message):
    assert check_number(answer, 6.375, integer=False, abs_tol=1e-3) == (False, message)


def test_check_number_says_too_large_or_too_small():
    assert check_number(49, 48, integer=True) == (False, "not quite: 49 is too large")
    assert check_number(47, 48, integer=True) == (False, "not quite: 47 is too small")
    assert check_number(24_203, 24_202, integer=True, answer_format=",") == (False, "not quite: 24,203 is too large")


def test_check_number_float_tolerances():
    assert check_number(6, 6.0, integer=False) == (True, "correct: 6.0")  # an int is a number
    assert check_number(6.3755, 6.375, integer=False, abs_tol=1e-3)[0]
    assert check_number(6.4, 6.375, integer=False, abs_tol=1e-3) == (False, "not quite: 6.4 is too large")
    assert check_number(6.374, 6.375, integer=False) == (False, "not quite: 6.374 is too small")  # no tolerance: exact
    assert check_number(0.01001, 0.01, integer=False, rel_tol=1e-3)[0]
    assert not check_number(0.0101, 0.01, integer=False, rel_tol=1e-3)[0]
    assert check_number(0.0101, 0.01, integer=False, abs_tol=1e-3)[0]  # absolute and relative tolerances differ


def test_check_callable_runs_the_check_only_on_functions():
    calls = []

    def check(fn):
        calls.append(fn)
        return fn(2) == 4, "checked"

    assert check_callable(lambda n: n * 2, check, signature="double(n)") == (True, "checked")
    assert check_callable(lambda n: n + 1, check)[0] is False
    assert check_callable(4, check, signature="double(n)") == (False, "expected a function double(n), got int")
    assert check_callable(None, check) == (False, "expected a function, got NoneType")
    assert len(calls) == 2


def test_wrong_type_and_report(capsys):
    assert wrong_type("a bool", 1) == "expected a bool, got int"
    assert report(3, True, "correct: 48") is True
    assert report(4, False, "no answer yet") is False
    assert capsys.readouterr().out == "exercise 3: correct: 48\nexercise 4: no answer yet\n"


@pytest.mark.parametrize(
    ("module", "number", "answer", "printed"),
    [
        ("attention", 2, 1152.0, "exercise 2: expected an int, got float"),
        ("attention", 1, 196 * 64, "exercise 1: not quite: 12544 is too small"),
        ("attention", 3, 7, "exercise 3: expected a function causal_mask(n), got int"),
        ("dynamic_linear", 1, 1_402_848, "exercise 1: correct: 1,402,848"),
        ("dynamic_linear", 2, 6.375, "exercise 2: correct: 6.375 C² MACs per token, against 4 C² for nn.Linear"),
        ("dynamic_linear", 4, "f", "exercise 4: expected a function deep_weight(layer, x, hw), got str"),
        ("dynamic_dwconv", 1, 4, "exercise 1: not quite: 4 is not it"),
        ("dynamic_dwconv", 3, 3, "exercise 3: not quite: expected a function conv_fn(x, kernels, bias), got int"),
        ("erf", 3, 1, "exercise 3: expected a bool, got int"),
        ("erf", 4, 0.5, "exercise 4: not quite: 0.5 is too large"),
        ("train", 2, "0.5", "exercise 2: expected a number, got str"),
        ("train", 3, None, "exercise 3: no answer yet"),
    ],
)
def test_chapter_checkers_print_through_the_shared_helpers(capsys, module, number, answer, printed):
    checker = importlib.import_module(f"wf_lessons.{module}").check_exercise
    assert checker(number, answer) is printed.split(": ", 1)[1].startswith("correct")
    assert capsys.readouterr().out.startswith(printed)

"""Every chapter's exercise checker (``wf_lessons.exercises.chNN``) and the helpers they share."""

import importlib
import math

import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from wf_lessons import complexity
from wf_lessons.exercises import (
    ch00,
    ch01,
    ch02,
    ch03,
    ch04,
    ch05,
    ch06,
    ch07,
    ch08,
    check_callable,
    check_number,
    judge_prediction,
    report,
    wrong_type,
)
from wf_lessons.models import reference_dynamic_blocks


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


def test_judge_prediction(capsys):
    options = ("grows", "shrinks")
    assert judge_prediction(2, " Grows ", "grows", options) is True
    assert judge_prediction(2, "shrinks", "grows", options, why="see section 3") is False
    assert judge_prediction(2, None, "grows", options) is False
    assert judge_prediction(2, "stays", "grows", options) is False
    assert judge_prediction(2, 4.0, "4", ("4", "16")) is True
    assert capsys.readouterr().out.splitlines() == [
        "exercise 2: you predicted 'Grows', the measurement says 'grows': as predicted",
        "exercise 2: you predicted 'shrinks', the measurement says 'grows': not as predicted; see section 3",
        "exercise 2: no prediction written (prediction_2 is None); the measurement says 'grows'. Next time, commit "
        "to a guess before the section",
        "exercise 2: expected one of 'grows', 'shrinks', got 'stays'",
        "exercise 2: you predicted '4', the measurement says '4': as predicted",
    ]
    with pytest.raises(ValueError, match="not one of the options"):
        judge_prediction(2, "grows", "stays", options)


def test_wrong_type_and_report(capsys):
    assert wrong_type("a bool", 1) == "expected a bool, got int"
    assert report(3, True, "correct: 48") is True
    assert report(4, False, "no answer yet") is False
    assert capsys.readouterr().out == "exercise 3: correct: 48\nexercise 4: no answer yet\n"


@pytest.mark.parametrize(
    ("module", "number", "answer", "printed"),
    [
        ("exercises.ch00", 1, 256, "exercise 1: correct: tokens of a 32x32 CIFAR-10 image with patch size 2 = 256"),
        ("exercises.ch00", 1, 256.0, "exercise 1: expected an int, got float"),
        ("exercises.ch01", 2, 1152.0, "exercise 2: expected an int, got float"),
        ("exercises.ch01", 1, 196 * 64, "exercise 1: not quite: 12544 is too small"),
        ("exercises.ch01", 3, 7, "exercise 3: expected a function causal_mask(n), got int"),
        ("exercises.ch02", 1, 1_402_848, "exercise 1: correct: 1,402,848"),
        ("exercises.ch02", 2, 6.375, "exercise 2: correct: 6.375 C² MACs per token, against 4 C² for nn.Linear"),
        ("exercises.ch02", 4, "f", "exercise 4: expected a function deep_weight(layer, x, hw), got str"),
        ("exercises.ch03", 1, 4, "exercise 1: not quite: 4 is not it"),
        ("exercises.ch03", 3, 3, "exercise 3: not quite: expected a function conv_fn(x, kernels, bias), got int"),
        ("exercises.ch04", 2, "1, 4", "exercise 2: expected a tuple of ints, got str"),
        ("exercises.ch05", 1, 768, "exercise 1: correct: 768 px, a 48² token grid"),
        ("exercises.ch06", 3, 1, "exercise 3: expected a bool, got int"),
        ("exercises.ch06", 4, 0.5, "exercise 4: not quite: 0.5 is too large"),
        ("exercises.ch07", 2, "0.5", "exercise 2: expected a number, got str"),
        ("exercises.ch07", 3, None, "exercise 3: no answer yet"),
    ],
)
def test_chapter_checkers_print_through_the_shared_helpers(capsys, module, number, answer, printed):
    checker = importlib.import_module(f"wf_lessons.{module}").check_exercise
    assert checker(number, answer) is printed.split(": ", 1)[1].startswith("correct")
    assert capsys.readouterr().out.startswith(printed)


CHECKERS = [(ch00, 3), (ch01, 5), (ch02, 6), (ch03, 6), (ch04, 4), (ch05, 5), (ch06, 6), (ch07, 7), (ch08, 4)]


@pytest.mark.parametrize(("module", "count"), CHECKERS)
def test_every_checker_says_no_answer_yet_and_rejects_unknown_numbers(capsys, module, count):
    assert all(module.check_exercise(number, None) is False for number in range(1, count + 1))
    assert capsys.readouterr().out.count("no answer yet") == count
    with pytest.raises(ValueError, match="has exercises"):
        module.check_exercise(count + 1, 0)


# ------------------------------------------------------------------------------------------------- chapter 00
def test_ch00_accepts_right_answers_only():
    assert ch00.check_exercise(1, 256) and ch00.check_exercise(2, 196)
    assert ch00.check_exercise(3, 16) and ch00.check_exercise(3, 16.0)
    assert not ch00.check_exercise(1, 64) and not ch00.check_exercise(3, 4)


# ------------------------------------------------------------------------------------------------- chapter 01
def test_ch01_accepts_right_answers_only(capsys):
    assert ch01.check_exercise(1, 2 * 196 * 64)
    assert not ch01.check_exercise(1, 196 * 64)
    assert ch01.check_exercise(2, 6 * 192)
    assert not ch01.check_exercise(2, 1000)
    assert not ch01.check_exercise(2, 1152.0)  # a float is not an int answer
    assert ch01.check_exercise(3, lambda n: torch.ones(n, n, dtype=torch.bool).tril())
    assert not ch01.check_exercise(3, lambda n: torch.ones(n, n, dtype=torch.bool).triu())
    assert not ch01.check_exercise(3, lambda n: torch.ones(n, n).tril())  # not boolean
    assert not ch01.check_exercise(1, None)
    assert "no answer yet" in capsys.readouterr().out
    with pytest.raises(ValueError, match="1, 2, 3, 4 and 5"):
        ch01.check_exercise(6, 0)


def attention_mlp(q, k, v):
    return (q @ k.T / math.sqrt(k.shape[-1])).softmax(dim=-1) @ v


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda q, k, v: (q @ k.T).softmax(-1) @ v, "divide the first layer's weight by √d"),
        (lambda q, k, v: (q @ k.T / math.sqrt(k.shape[-1])).softmax(0) @ v, "across the hidden units"),
        (lambda q, k, v: q @ k.T / math.sqrt(k.shape[-1]) @ v, "put the softmax between the two layers"),
        (lambda q, k, v: attention_mlp(q, k, v).T, "should return (5, 8), one output row per query"),
        (lambda q, k, v: attention_mlp(q, k, v) + 0.1, "differs from attention by up to 0.1"),
        (lambda q, k, v: "o", "got str"),
    ],
)
def test_ch01_build_exercise_says_which_step_differs(capsys, wrong, message):
    assert ch01.check_exercise(4, attention_mlp)
    capsys.readouterr()
    assert not ch01.check_exercise(4, wrong)
    assert message in capsys.readouterr().out


def test_ch01_prediction_and_its_measurement(capsys):
    assert ch01.check_exercise(5, 16.0) and not ch01.check_exercise(5, 4.0)
    assert ch01.check_prediction(5, "16") and ch01.check_prediction(5, 16)
    assert not ch01.check_prediction(5, "4") and not ch01.check_prediction(5, None)
    out = capsys.readouterr().out
    assert "as predicted" in out and "not as predicted" in out and "no prediction written" in out
    with pytest.raises(ValueError, match="exercise 5 only"):
        ch01.check_prediction(4, "16")


# ------------------------------------------------------------------------------------------------- chapter 02
def deep_weight(layer, x, hw):
    b, n, c = x.shape
    p = F.avg_pool2d(x.transpose(1, 2).reshape(b, c, *hw), 2).flatten(2).transpose(1, 2)
    u, v = torch.split(layer.wfm(p), [layer.w1.shape[0], layer.w2.shape[0]], dim=-1)
    k = F.silu(layer.hidden1(F.silu(u))) @ layer.w1
    v = F.silu(layer.hidden2(F.silu(v))) @ layer.w2
    w = k.transpose(1, 2) @ v * c**-0.5 / n
    return w / (w.norm(dim=1, keepdim=True) + 1)


def test_ch02_accepts_right_and_rejects_wrong_answers(capsys):
    assert ch02.check_exercise(1, 1_402_848) and not ch02.check_exercise(1, 1_402_847)
    assert ch02.check_exercise(2, 6.375) and not ch02.check_exercise(2, 6.4)
    assert ch02.check_exercise(3, 48) and not ch02.check_exercise(3, 49)
    assert ch02.check_exercise(5, 49) and not ch02.check_exercise(5, 48)
    assert ch02.check_exercise(4, deep_weight)
    assert not ch02.check_exercise(4, lambda layer, x, hw: deep_weight(layer, x, hw) * 1.01)
    assert not ch02.check_exercise(1, None) and not ch02.check_exercise(1, "1402848")
    assert ch02.check_exercise(6, 4.0) and not ch02.check_exercise(6, 16.0)
    assert ch02.check_prediction(6, "4") and not ch02.check_prediction(6, "16")
    with pytest.raises(ValueError):
        ch02.check_exercise(7, 0)
    assert "correct" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------- chapter 03
def test_ch03_checkers(capsys):
    assert ch03.check_exercise(1, 2 * 384 * 384 + 11 * 384) and not ch03.check_exercise(1, 75_840)
    assert ch03.check_exercise(2, 32 * 32 - 30 * 30) and not ch03.check_exercise(2, 4)

    def shift_add(x, kernels, bias):
        B, C, H, W = x.shape
        padded = F.pad(x, (1, 1, 1, 1))
        return bias.view(1, C, 1, 1) + sum(
            padded[:, :, i : i + H, j : j + W] * kernels[:, :, i, j, None, None] for i in range(3) for j in range(3)
        )

    assert ch03.check_exercise(3, shift_add)
    assert not ch03.check_exercise(3, lambda x, k, b: shift_add(x, k, b) - b.view(1, -1, 1, 1))  # forgets the bias
    assert not ch03.check_exercise(3, lambda x, k, b: shift_add(x, k.flip(-1), b))  # a convolution, not correlation
    assert ch03.check_exercise(4, 2 * 2 * 9 * 192 * 192) and not ch03.check_exercise(4, 0)
    assert "correct" in capsys.readouterr().out
    assert ch03.check_exercise(2, 124) and not ch03.check_exercise(1, None)
    assert "exercise 1: no answer yet" in capsys.readouterr().out
    assert not ch03.check_exercise(3, "not a function")
    assert ch03.check_exercise(5, 3.0) is False
    assert ch03.check_exercise(5, ch03._growth()) and ch03._growth() < 4
    assert ch03.check_prediction(5, "less than 4") and not ch03.check_prediction(5, "4")
    with pytest.raises(ValueError, match="exercises 1, 2, 3, 4, 5 and 6"):
        ch03.check_exercise(7, 0)


def adaptive_kernels(layer, x):
    raw = layer.wfm(F.adaptive_avg_pool2d(x, 3))
    return layer.w.squeeze(1) + raw / (raw.norm(dim=(-2, -1), keepdim=True) + 1)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda layer, x: adaptive_kernels(layer, x) - layer.w.squeeze(1), "add the static kernel K0"),
        (lambda layer, x: layer.w.squeeze(1) + layer.wfm(F.adaptive_avg_pool2d(x, 3)), "normalise the prediction"),
        (lambda layer, x: adaptive_kernels(layer, x)[0], "expected kernels (B, C, 3, 3)"),
        (lambda layer, x: adaptive_kernels(layer, x) * 2, "differ from the layer's by up to"),
        ("kernels", "expected a function adaptive_kernels(layer, x), got str"),
    ],
)
def test_ch03_build_exercise_says_which_step_differs(capsys, wrong, message):
    with torch.no_grad():
        assert ch03.check_exercise(6, adaptive_kernels)
    capsys.readouterr()
    assert not ch03.check_exercise(6, wrong)
    assert message in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------- chapter 04
def test_ch04_accepts_right_answers_only():
    assert ch04.check_exercise(2, reference_dynamic_blocks(20)) and ch04.check_exercise(2, [1, 4, 7, 10, 13, 16, 19])
    assert not ch04.check_exercise(2, (0, 3, 6))
    assert ch04._wfm_b_minus_s() == 0  # WFM-B is WFM-S at 448 px: no weight depends on the number of tokens
    assert ch04.check_exercise(4, 0) and not ch04.check_exercise(4, 1) and not ch04.check_exercise(4, 0.0)
    assert ch04.check_prediction(4, "same") and not ch04.check_prediction(4, "4x")
    with pytest.raises(ValueError, match="exercise 4 only"):
        ch04.check_prediction(7, "80")


@pytest.mark.parametrize(
    ("slip", "message"),
    [
        ({"overwrite": False}, "x = LN1(x)"),
        ({"conv_bias": False}, "block.dwc.b"),
        ({"linear_bias": False}, "block.linear1.b"),
        ({"predicted": False}, "not by W0 alone"),
    ],
)
def test_ch04_build_exercise_names_each_slip(capsys, slip, message):
    assert ch04.check_exercise(3, ch04._assembled)
    capsys.readouterr()
    assert not ch04.check_exercise(3, lambda block, x, hw: ch04._assembled(block, x, hw, **slip))
    assert message in capsys.readouterr().out
    assert not ch04.check_exercise(3, lambda block, x, hw: block(x, hw)[0])  # one image's tokens: the wrong shape
    assert "expected tokens (B, N, C)" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------- chapter 05
def test_ch05_accepts_right_answers_only():
    assert ch05.check_exercise(1, 16 * math.isqrt(6 * 384)) and not ch05.check_exercise(1, 752)
    assert ch05.check_exercise(2, 0.14) and not ch05.check_exercise(2, 0.16)  # 12 blocks of 4·d·N² FLOPs: 0.142
    assert 3.5 < ch05._patch_flop_ratio() < 4.0  # 4× fewer tokens; the patch embedding's work does not shrink
    assert ch05.check_exercise(3, ch05._patch_flop_ratio()) and not ch05.check_exercise(3, 4.0)
    assert 21 < ch05._deit_t_growth() < 440  # between the tokens' growth and its square
    assert ch05.check_exercise(5, ch05._deit_t_growth()) and not ch05.check_exercise(5, 20.9)
    assert ch05.check_prediction(5, "80") and not ch05.check_prediction(5, "440")


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (ch05._endpoint_slope, "first and last points"),
        (ch05._linear_slope, "log y against log x"),
        (lambda xs, ys: 1 / complexity.loglog_slope(xs, ys), "regress log y on log x"),
        (lambda xs, ys: 1.0, "expected a slope of"),
        (lambda xs, ys: "1", "expected a number"),
        (lambda xs: 1.0, "raised TypeError"),
    ],
)
def test_ch05_build_exercise_names_each_slip(capsys, wrong, message):
    assert ch05.check_exercise(4, complexity.loglog_slope)
    capsys.readouterr()
    assert not ch05.check_exercise(4, wrong)
    assert message in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------- chapter 06
@pytest.mark.parametrize(("number", "right", "wrong"), [(1, 54, 52), (2, 32, 31), (3, True, False), (4, 0.01, 0.2)])
def test_ch06_accepts_right_answers_only(number, right, wrong):
    assert ch06.check_exercise(number, right) is True
    assert ch06.check_exercise(number, wrong) is False


@pytest.mark.parametrize(
    ("slip", "message"),
    [
        ({"relu_grad": False}, "ReLU the gradient before summing"),
        ({"absolute": True}, "not take its absolute value"),
        ({"mean": False}, "average over the images"),
        ({"relu_score": False}, "ReLU to the central token's channels"),
    ],
)
def test_ch06_build_exercise_names_each_slip(capsys, slip, message):
    assert ch06.check_exercise(5, ch06._erf_variant)
    capsys.readouterr()
    assert not ch06.check_exercise(5, lambda model, images: ch06._erf_variant(model, images, **slip))
    assert message in capsys.readouterr().out


def test_ch06_prediction_and_its_measurement():
    shares = ch06._released_shares()
    assert shares["dwc"] > 10 * shares["linear"] > 0  # the DWC starts far more predicted than the linear layer
    assert ch06.check_exercise(6, shares["dwc"] / shares["linear"]) and not ch06.check_exercise(6, 1.0)
    assert ch06.check_prediction(6, "dwc") and not ch06.check_prediction(6, "about the same")


# ------------------------------------------------------------------------------------------------- chapter 07
def lr_factor(step, total, warmup, min_ratio):
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda s, t, w, m: s / w if s < w else lr_factor(s, t, w, m), "the warm-up starts at 1/warmup_steps"),
        (lambda s, t, w, m: lr_factor(s, t, w, 0.0), "the cosine ends at min_ratio"),
        (lambda s, t, w, m: (s + 1) / w if s < w else lr_factor(s, t, 0, m), "p = (step - warmup_steps)"),
        (lambda s, t, w, m: lr_factor(s, t, w, m) if w else 1 / w, "divides by zero"),
        (lambda s, t, w, m: [1.0], "should return a number, got list"),
    ],
)
def test_ch07_build_exercise_says_which_part_differs(capsys, wrong, message):
    assert ch07.check_exercise(6, lr_factor)
    capsys.readouterr()
    assert not ch07.check_exercise(6, wrong)
    assert message in capsys.readouterr().out


def test_ch07_prediction_follows_the_committed_logs(capsys):
    means = ch07._cpu_preset_means()
    best = max(means, key=means.get)
    assert set(means) == {"wf-cifar-cpu", "all-static", "deit-cifar-cpu"}
    assert ch07.check_exercise(7, best) and not ch07.check_exercise(7, min(means, key=means.get))
    assert not ch07.check_exercise(7, "wf-cifar") and "expected one of" in capsys.readouterr().out
    assert ch07.check_prediction(7, best) and not ch07.check_prediction(7, None)


# ------------------------------------------------------------------------------------------------- chapter 08
def test_ch08_answers_follow_the_committed_logs():
    from wf_lessons import runlog

    log = runlog.read(ch08.RELIANCE_RUN)
    drop = 100 * (log["val_acc"] - log["val_acc_predictions_off"])
    assert ch08.check_exercise(1, drop) and not ch08.check_exercise(1, drop + 0.5)
    assert not ch08.check_exercise(1, drop / 100)  # a fraction, not points
    outcome = next(k for k, (low, high) in ch08.DROP_OPTIONS.items() if low <= drop < high)
    assert ch08.check_prediction(1, outcome) and ch08.check_prediction(1, f" {outcome.upper()} ")
    assert not any(ch08.check_prediction(1, other) for other in ch08.DROP_OPTIONS if other != outcome)
    assert not ch08.check_prediction(1, None)
    diffs = [100 * (runlog.read(f"train-wf-cifar-cpu-cpu-seed{s}")["test_acc"]
                    - runlog.read(f"train-wf-cifar-cpu-all-static-cpu-seed{s}")["test_acc"]) for s in range(3)]
    interval = stats.ttest_rel(diffs, [0.0] * 3).confidence_interval(0.95)
    assert ch08.check_exercise(2, (interval.low, interval.high))
    assert ch08.check_exercise(2, [interval.low, interval.high])
    assert not ch08.check_exercise(2, (interval.low, interval.high + 1)) and not ch08.check_exercise(2, interval.low)
    assert ch08.check_exercise(3, 54_016) is False  # a number where a function is asked for
    assert ch08.check_exercise(4, ch08._bilateral_cost()) and not ch08.check_exercise(4, float(ch08._bilateral_cost()))


def test_ch08_zero_start_accepts_one_branch_only(capsys):
    def right(layer):
        with torch.no_grad():
            layer.w2.zero_()

    def both(layer):
        with torch.no_grad():
            layer.w1.zero_()
            layer.w2.zero_()

    def static(layer):
        with torch.no_grad():
            layer.w.zero_()

    assert ch08.check_exercise(3, right)
    assert not ch08.check_exercise(3, both) and "not both" in capsys.readouterr().out
    assert not ch08.check_exercise(3, static) and "static weight W0 changed" in capsys.readouterr().out
    assert not ch08.check_exercise(3, lambda layer: None) and "not zero yet" in capsys.readouterr().out

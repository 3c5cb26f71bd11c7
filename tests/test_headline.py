"""The headline GPU command: its plan, and a clear refusal without a GPU."""

import pytest
import torch

from wf_lessons import headline


def test_plan_fits_the_budget_after_the_overhead():
    p = headline.plan(images_per_s=10_000, minutes=5, batch=500)  # 100 steps of 500 per epoch: 5 s
    assert p["epoch_s_estimate"] == pytest.approx(5.0)
    assert p["epochs"] == int(300 * (1 - headline.OVERHEAD) / 5)
    assert p["train_s_estimate"] <= 300
    assert headline.plan(images_per_s=10_000, minutes=5, batch=512)["epoch_s_estimate"] == pytest.approx(
        97 * 512 / 10_000)  # the last partial batch is dropped
    with pytest.raises(ValueError, match="need images_per_s > 0 and minutes > 0"):
        headline.plan(0, 5, 512)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_refuses_on_a_cpu_with_a_pointer_to_the_cpu_presets(capsys):
    assert headline.main(["--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the headline run needs a CUDA GPU") and "--preset cpu" in err


@pytest.mark.parametrize("argv", [["--minutes", "0"], ["--minutes", "inf"], ["--minutes", "nan"],
                                  ["--seeds", "0", str(2**32)]])
def test_bad_arguments(capsys, argv):
    assert headline.main(argv) == 2  # before any GPU is looked for
    assert "error: --minutes must be a finite number > 0 and seeds ints in [0, 2**32)" in capsys.readouterr().err

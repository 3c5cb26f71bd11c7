"""Training curves from run logs: one colour per group, one style per seed, the time unit from the longest run."""

import matplotlib
import matplotlib.pyplot as plt
import pytest

from wf_lessons.train import plot_curves

matplotlib.use("Agg")


def _log(seed, train_s_per_epoch, epochs=3):
    return {"seed": seed, "epochs": [{"epoch": e, "test_acc": 0.1 * e, "train_s": train_s_per_epoch * e}
                                     for e in range(1, epochs + 1)]}


def test_groups_colours_styles_and_time_unit():
    groups = {"wf": [_log(0, 100), _log(1, 100)], "deit": [_log(0, 300)]}  # 900 s: minutes
    fig = plot_curves(groups, "title", colours=("green", "purple"))
    by_epoch, by_time = fig.axes[:2]
    assert [line.get_label() for line in by_epoch.lines] == ["wf, seed 0", "wf, seed 1", "deit, seed 0"]
    assert [line.get_color() for line in by_epoch.lines] == ["green", "green", "purple"]
    assert [line.get_linestyle() for line in by_epoch.lines] == ["-", "--", "-"]
    assert by_time.get_xlabel() == "training time (min)" and list(by_time.lines[2].get_xdata()) == [5, 10, 15]
    assert fig.legends and fig.get_suptitle() == "title"
    short = plot_curves({"wf": [_log(0, 10)]}, "t")  # 30 s: seconds
    assert short.axes[1].get_xlabel() == "training time (s)"
    assert list(short.axes[1].lines[0].get_xdata()) == [10, 20, 30]
    plt.close("all")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="no run logs to plot"):
        plot_curves({}, "t")
    with pytest.raises(ValueError, match="2 groups need as many colours, got 1"):
        plot_curves({"a": [_log(0, 1)], "b": [_log(0, 1)]}, "t", colours=("red",))


def test_runs_with_a_validation_split_plot_their_validation_accuracy():
    val = {"seed": 0, "data": {"epoch_eval_split": "val"},
           "epochs": [{"epoch": e, "val_acc": 0.2 * e, "train_s": e} for e in (1, 2)]}
    fig = plot_curves({"wf": [val]}, "t")
    assert list(fig.axes[0].lines[0].get_ydata()) == [0.2, 0.4]
    assert fig.axes[0].get_ylabel() == "validation accuracy"
    mixed = plot_curves({"wf": [val], "old": [_log(0, 1)]}, "t")
    assert mixed.axes[0].get_ylabel() == "accuracy (validation or test)"
    plt.close("all")

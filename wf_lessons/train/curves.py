"""Training curves from run logs: per-epoch accuracy (validation, or test for runs without a validation split)
against epochs and against training time, side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SEED_STYLES", "epoch_split", "epoch_accuracies", "plot_curves"]

#: one line style per seed (seed k uses entry k mod 4)
SEED_STYLES = ("o-", "s--", "^:", "d-.")


def epoch_split(log: dict[str, Any]) -> str:
    """The set a run evaluated on after each epoch: ``"val"`` (its held-out validation split) or ``"test"``."""
    return log.get("data", {}).get("epoch_eval_split", "test")


def epoch_accuracies(log: dict[str, Any]) -> list[float]:
    """A run log's per-epoch accuracy on its per-epoch evaluation set (:func:`epoch_split`)."""
    key = f"{epoch_split(log)}_acc"
    return [e[key] for e in log["epochs"]]


def plot_curves(groups: Mapping[str, Sequence[dict[str, Any]]], title: str,
                colours: Sequence[Any] | None = None, ylabel: str | None = None):
    """One figure, two panels: every run log's per-epoch accuracy (:func:`epoch_accuracies`) against its epoch and
    against its training time (minutes when the longest run trained for more than 10 minutes, else seconds).
    ``ylabel`` defaults to "validation accuracy" or "test accuracy" by the logs' evaluation set.

    ``groups``: label -> run logs, one colour per label (``colours``, else matplotlib's ``tab10``) and one line
    style per seed; the legend sits to the right of the panels. Returns the matplotlib Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    colours = list(colours) if colours is not None else list(plt.cm.tab10.colors)
    if len(colours) < len(groups):
        raise ValueError(f"{len(groups)} groups need as many colours, got {len(colours)}")
    logs = [log for runs in groups.values() for log in runs]
    if not logs:
        raise ValueError("no run logs to plot")
    splits = {epoch_split(log) for log in logs}
    if ylabel is None:
        names = {"val": "validation accuracy", "test": "test accuracy"}
        ylabel = names[splits.pop()] if len(splits) == 1 else "accuracy (validation or test)"
    minutes = max(e["train_s"] for log in logs for e in log["epochs"]) > 600
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
    for (label, runs), colour in zip(groups.items(), colours):
        for log in runs:
            epochs, acc = log["epochs"], epoch_accuracies(log)
            name, style = f"{label}, seed {log['seed']}", SEED_STYLES[log["seed"] % len(SEED_STYLES)]
            ax1.plot([e["epoch"] for e in epochs], acc, style, color=colour, ms=3, label=name)
            ax2.plot([e["train_s"] / (60 if minutes else 1) for e in epochs], acc, style, color=colour, ms=3,
                     label=name)
    ax1.set_xlabel("epoch")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax2.set_xlabel(f"training time ({'min' if minutes else 's'})")
    for ax in (ax1, ax2):
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.legend(*ax1.get_legend_handles_labels(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig

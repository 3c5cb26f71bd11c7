"""The README's controlled-study numbers are the committed summaries' (``data/runs/ablation-controls-*.json``): the
learning-rate sweep, the table of variants, the table of paired comparisons (every one, each under its own label)
and any other paired difference quoted with its interval (or its change between the schedules). A number copied
by hand that a later summary changed, or a comparison left out, fails here."""

import re
import statistics
from pathlib import Path

import pytest

from wf_lessons import ablate, runlog

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "data" / "runs"
SIGNED = r"[−+][\d.]+"


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("**The controlled study**")
    return text[start:text.index("**Trained models shipped", start)]


def _signed(value: float) -> str:
    return f"{value:+.2f}".replace("-", "−")


def _rows(first_cell: str) -> list[list[str]]:
    """The cells of every table row of the section whose first cell matches ``first_cell``."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in _section().splitlines()
            if line.startswith("|")]
    return [r for r in rows if re.fullmatch(first_cell, r[0])]


def _pair(label: str) -> tuple[str, ...]:
    """(treatment, control) of a row labelled `` `treatment` − `control` ``."""
    return tuple(label.split("`")[1::2])


@pytest.fixture(scope="module")
def summaries() -> dict[str, dict]:
    return {p.stem: runlog.read(p) for p in sorted(RUNS.glob("ablation-controls-*.json")) if "-seed" not in p.stem}


def test_the_sweep_table_is_the_summarys(summaries):
    sweep = summaries["ablation-controls-cpu"]["lr_sweep"]
    rates = [float(r) for r in _rows("learning rate")[0][1:]]
    rows = [r for r in _rows(r"`(released|all-static)`.*") if all(c.strip("*").endswith("%") for c in r[1:])]
    assert len(rows) == 2
    for row in rows:
        variant = row[0].split("`")[1]
        assert [c.strip("*") for c in row[1:]] == [f"{100 * sweep[variant][f'{lr:g}']:.2f}%" for lr in rates]


def test_the_variant_table_is_the_summarys(summaries):
    table = summaries["ablation-controls-cpu"]["variants"]
    rows = [r for r in _rows(r"`[\w-]+`") if "±" in r[2]]
    assert {r[0].strip("`") for r in rows} == set(table), "the README's table lists every variant with runs"
    def mean(v: dict, key: str) -> str:
        return f"{100 * statistics.mean(v[key]):.2f}%"

    for name, _, test, seeds, val, train, off in rows:
        v = table[name.strip("`")]
        assert test == f"{100 * v['mean']:.2f} ± {100 * v['std']:.2f}%", name
        assert seeds == ", ".join(f"{100 * a:.2f}" for a in v["test_acc"]), name
        assert (val, train) == (mean(v, "val_acc"), mean(v, "train_eval_acc")), name
        # "—" where switching the predictions off changes nothing: nothing is predicted
        predicting = v.get("val_acc_predictions_off", v["val_acc"]) != v["val_acc"]
        assert off == (mean(v, "val_acc_predictions_off") if predicting else "—"), name


def test_the_comparison_table_is_the_summarys_every_one(summaries):
    """One row per comparison of the 15-epoch study, in its order; the 2-epoch study's result for the same
    comparison beside it ("—" while it has none)."""
    long, short = (summaries.get(f"ablation-{p}", {}).get("comparisons", []) for p in ("controls-cpu",
                                                                                      "controls-short-cpu"))
    rows = _rows(r"`[\w-]+` − `[\w-]+`")
    assert [_pair(r[0]) for r in rows] == [(c["treatment"], c["control"]) for c in long], "every comparison, in order"
    for row in rows:
        label, cells = row[0], row[2:]
        assert len(cells) == 4, f"{label}: 15 epochs and 2 epochs, each a difference [95% CI] and a Holm p"
        for (difference, holm), found in zip((cells[:2], cells[2:]), (long, short)):
            c = next((c for c in found if (c["treatment"], c["control"]) == _pair(label)), None)
            if c is None:
                assert (difference, holm) == ("—", "—"), label
                continue
            assert difference == f"{_signed(c['mean'])} [{_signed(c['ci95'][0])}, {_signed(c['ci95'][1])}]", label
            assert holm == f"{c['p_holm']:.3f}", label


def test_every_other_quoted_difference_is_a_committed_comparison(summaries):
    """... or the change of one from the 2-epoch to the 15-epoch study (:func:`ablate.schedule_change`)."""
    rows = [c for s in summaries.values() for c in s.get("comparisons", [])]
    rows += ablate.schedule_change(*(summaries[f"ablation-{p}"]["variants"] for p in ("controls-short-cpu",
                                                                                      "controls-cpu")))
    known = {(_signed(c["mean"]), _signed(c["ci95"][0]), _signed(c["ci95"][1])) for c in rows}
    prose = "\n".join(line for line in _section().splitlines() if not line.startswith("|"))
    for quoted in re.findall(rf"({SIGNED})(?:\s+points)?\s+\[({SIGNED}),\s+({SIGNED})\]", prose):
        assert quoted in known, f"{quoted[0]} [{quoted[1]}, {quoted[2]}] is in no committed summary's comparisons"
    assert not re.search(r"(?<![\w.])-\d+\.\d+\s+(?:points\s+)?\[", prose), "a difference with an ASCII minus sign"

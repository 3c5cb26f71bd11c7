"""The README's controlled-study numbers are the committed summaries' (``data/runs/ablation-controls-*.json``): the
learning-rate sweep, the per-variant table and every paired difference quoted with its interval. A number copied by
hand that a later summary changed fails here."""

import re
from pathlib import Path

import pytest

from wf_lessons import runlog

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "data" / "runs"


def _section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("**The controlled study**")
    return text[start:text.index("**Trained models shipped", start)]


def _number(text: str) -> float:
    return float(text.replace("−", "-").replace("+", ""))


@pytest.fixture(scope="module")
def summaries() -> dict[str, dict]:
    return {p.stem: runlog.read(p) for p in sorted(RUNS.glob("ablation-controls-*.json"))
            if "-seed" not in p.stem}


def test_the_sweep_table_is_the_summarys(summaries):
    sweep = summaries["ablation-controls-cpu"]["lr_sweep"]
    rows = re.findall(r"^\| `(released|all-static)`[^|]*\|((?: \**[\d.]+%\** \|)+)$", _section(), flags=re.M)
    header = re.search(r"^\| learning rate \|(.+)\|$", _section(), flags=re.M).group(1)
    rates = [_number(r.strip()) for r in header.split("|")]
    assert len(rows) == 2
    for variant, cells in rows:
        accs = [float(c.strip().strip("*").rstrip("%")) for c in cells.split("|")[:-1]]
        assert [f"{a:.2f}" for a in accs] == [f"{100 * sweep[variant][f'{lr:g}']:.2f}" for lr in rates]


def test_the_variant_table_is_the_summarys(summaries):
    table = summaries["ablation-controls-cpu"]["variants"]
    rows = re.findall(r"^\| `([\w-]+)`[^|]*\|[^|]*\| ([\d.]+) ± ([\d.]+)% \| ([\d., ]+) \|$", _section(), flags=re.M)
    assert rows, "the README has no table of the study's variants"
    for name, mean, std, seeds in rows:
        v = table[name]
        assert (mean, std) == (f"{100 * v['mean']:.2f}", f"{100 * v['std']:.2f}"), name
        assert [s.strip() for s in seeds.split(",")] == [f"{100 * a:.2f}" for a in v["test_acc"]], name


def test_every_quoted_difference_is_a_committed_comparison(summaries):
    quoted = re.findall(r"([−+][\d.]+)(?: points)? \[([−+][\d.]+), ([−+][\d.]+)\]", _section())
    assert quoted, "the README quotes no paired difference"
    known = {(f"{c['mean']:+.2f}", f"{c['ci95'][0]:+.2f}", f"{c['ci95'][1]:+.2f}")
             for s in summaries.values() for c in s.get("comparisons", [])}
    for mean, low, high in quoted:
        as_text = tuple(f"{_number(x):+.2f}" for x in (mean, low, high))
        assert as_text in known, f"{mean} [{low}, {high}] is in no committed summary's comparisons"

"""The course's prose: no control characters in the texts a reader sees, and every formula parses.

Checked files (``TEXTS``): every chapter source ``chapters/NN_slug.py``, ``chapters/paper_notes.md``,
``README.md`` and ``data/README.md``.

**Control characters.** None of U+0000..U+001F except the newline, no U+007F (DEL) and no C1 control
(U+0080..U+009F). Tabs and carriage returns are refused as well: no checked file holds one (indentation is spaces,
lines end in ``\\n``), and a tab in prose is almost always a ``\\t`` escape that ate a LaTeX macro (``\\top``,
``\\times``), as ``\\b`` and ``\\f`` eat ``\\big`` and ``\\frac``.

**Formulas.** Every ``$$…$$`` and ``$…$`` block of a chapter's markdown cells and of the markdown files (outside
code spans and fenced code) must parse with matplotlib's mathtext parser, which lays the formula out and so rejects
unknown macros, unbalanced braces, a missing ``\\right``, double superscripts and the like. JupyterLab renders the
formulas with MathJax, which accepts more of TeX than mathtext. Each construct that MathJax accepts and mathtext
does not is rewritten before parsing by one rule of ``MATHJAX_ONLY``, each with its reason; what the rewrite leaves
is still parsed, and anything else mathtext does not know fails the test. A new construct needs a new rule there,
with its reason. Mathtext reads a tab as a space (``K^\\top`` written as ``K^<tab>op`` would pass as ``K^op``), so
control characters inside a formula are reported by the formula check too, not only by the file check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import jupytext
import pytest
from matplotlib.mathtext import MathTextParser

from wf_lessons import notebooks

ROOT = Path(__file__).resolve().parent.parent
MARKDOWN_FILES = [ROOT / "chapters" / "paper_notes.md", ROOT / "README.md", ROOT / "data" / "README.md"]
TEXTS = [*notebooks.chapter_sources(), *MARKDOWN_FILES]

#: Every control character but the newline: C0 (tab and carriage return included), DEL and C1.
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")

#: (pattern, replacement, example, reason): LaTeX that MathJax renders and mathtext does not know.
MATHJAX_ONLY = [
    (r"\\(?:big|Big|bigg|Bigg)[lmr]?(?![A-Za-z])", "", r"\big(a\big)",
     "fixed-size delimiters: mathtext has none; the delimiter after the macro is still parsed"),
    (r"\\sqrt(?![A-Za-z])\s*(\\[A-Za-z]+|[A-Za-z0-9])", r"\\sqrt{\1}", r"\sqrt d",
     "TeX takes a single token as the argument of \\sqrt; mathtext wants braces"),
    (r"\\[lr]Vert(?![A-Za-z])", r"\\Vert", r"\lVert D\rVert_F",
     "mathtext knows \\Vert but not its left and right forms"),
    (r"\\iff(?![A-Za-z])", r"\\Longleftrightarrow", r"a \iff b",
     "mathtext has no \\iff; TeX draws it as a spaced \\Longleftrightarrow"),
    (r"\\underbrace(?![A-Za-z])", "", r"\underbrace{K^\top V}_{d\times d}",
     "mathtext has no \\underbrace; the braced argument and its subscript label are still parsed"),
]

_PARSER = MathTextParser("path")


@dataclass(frozen=True)
class Formula:
    path: Path
    where: str  # "markdown cell 12" or "line 40"
    tex: str  # without the dollars
    display: bool

    def __str__(self) -> str:
        dollars = "$$" if self.display else "$"
        shown = CONTROL.sub(lambda m: f"<U+{ord(m.group()):04X}>", self.tex)
        return f"{self.path.relative_to(ROOT)}, {self.where}: {dollars}{shown}{dollars}"


# ----------------------------------------------------------------------------------------------- helpers
def control_characters(text: str) -> list[str]:
    """``"line L, column C: U+XXXX"`` for every control character of ``text`` (the newline allowed)."""
    found = []
    for m in CONTROL.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        column = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        found.append(f"line {line}, column {column}: U+{ord(m.group()):04X}")
    return found


_FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1[^\n]*$", re.M | re.S)
_CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_DISPLAY = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", re.S)
# $…$ on one line or across single line breaks (not a blank line); no space just inside the dollars, so that
# prose such as "costs $5 and $10" is not read as a formula
_INLINE = re.compile(r"(?<![\\$])\$(?![\s$])((?:[^$\n\\]|\\.|\n(?![ \t]*\n))+?)(?<![\s\\])\$(?![$\d])")


def formulas_in(markdown: str, path: Path, where) -> tuple[list[Formula], list[str]]:
    """The formulas of one markdown text, and problems found while extracting them (an unclosed ``$$``).

    ``where(offset)`` names the place of a character offset in ``markdown`` for the messages."""

    def blank(m: re.Match) -> str:  # keep offsets (and line numbers) as they were
        return re.sub(r"[^\n]", " ", m.group())

    text = _CODE_SPAN.sub(blank, _FENCE.sub(blank, markdown))
    found, problems = [], []
    for m in _DISPLAY.finditer(text):
        found.append(Formula(path, where(m.start()), m.group(1), True))
    rest = _DISPLAY.sub(blank, text)
    if "$$" in rest:
        problems.append(f"{path.relative_to(ROOT)}, {where(rest.index('$$'))}: a $$ without its closing $$")
    for m in _INLINE.finditer(rest):
        found.append(Formula(path, where(m.start()), m.group(1), False))
    return found, problems


def extract(path: Path) -> tuple[list[Formula], list[str]]:
    """Every formula of a chapter source's markdown cells, or of a markdown file."""
    if path.suffix == ".md":
        text = path.read_text(encoding="utf-8")
        return formulas_in(text, path, lambda offset: f"line {text.count(chr(10), 0, offset) + 1}")
    found, problems = [], []
    for index, cell in enumerate(jupytext.read(path).cells):
        if cell.cell_type == "markdown":
            f, p = formulas_in(cell.source, path, lambda offset, index=index: f"markdown cell {index}")
            found += f
            problems += p
    return found, problems


def for_mathtext(tex: str) -> str:
    """``tex`` with the MathJax-only constructs of :data:`MATHJAX_ONLY` rewritten, on one line."""
    for pattern, replacement, _example, _reason in MATHJAX_ONLY:
        tex = re.sub(pattern, replacement, tex)
    return " ".join(tex.split("\n"))


def math_problem(tex: str) -> str | None:
    """Why ``tex`` (a formula without its dollars) would not render, or None when it parses."""
    controls = control_characters(tex)
    if controls:
        return (f"control characters ({', '.join(controls)}): a backslash escape such as \\b, \\f or \\t in a "
                "Python string eats the macro (\\big, \\frac, \\top)")
    try:
        _PARSER.parse(f"${for_mathtext(tex)}$")
    except Exception as error:  # mathtext raises pyparsing's exceptions and ValueError
        return f"{type(error).__name__}: {str(error).strip().splitlines()[-1]}"
    return None


def _all_formulas() -> tuple[list[Formula], list[str]]:
    found, problems = [], []
    for path in TEXTS:
        f, p = extract(path)
        found += f
        problems += p
    return found, problems


FORMULAS, EXTRACTION_PROBLEMS = _all_formulas()


# ------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("path", TEXTS, ids=[str(p.relative_to(ROOT)) for p in TEXTS])
def test_no_control_characters(path):
    found = control_characters(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)} holds control characters: {'; '.join(found)}"


def test_formulas_are_found():
    assert not EXTRACTION_PROBLEMS, "\n".join(EXTRACTION_PROBLEMS)
    chapter_01 = [f for f in FORMULAS if f.path.name.startswith("01_")]
    assert len(chapter_01) >= 3 and all(f.display for f in chapter_01)


def test_every_formula_parses():
    broken = [f"{formula}\n    -> {problem}" for formula in FORMULAS if (problem := math_problem(formula.tex))]
    assert not broken, "formulas that would not render:\n" + "\n".join(broken)


# the multi-head formula of chapter 01, and the same as it once was in the source: written in a plain (not raw)
# Python string, "\b", "\f" and "\t" became control characters, breaking \big, \frac, \top and \times
MULTIHEAD = (
    r"o_i = \sum_{t=1}^{h} \operatorname{softmax}\!\big(q_i^t W_1^t\big)\,\big(W_2^t W_O^t\big),\qquad" "\n"
    r"  W_1^t = \frac{(K^t)^\top}{\sqrt d}\ (d\times N),\quad W_2^t W_O^t = V^t W_O^t\ (N\times C)."
)
BROKEN_MULTIHEAD = MULTIHEAD.replace("\\b", "\b").replace("\\f", "\f").replace("\\t", "\t")


def test_the_checks_catch_the_broken_multihead_formula(tmp_path):
    assert math_problem(MULTIHEAD) is None
    assert "control characters" in math_problem(BROKEN_MULTIHEAD)
    # in a file: the file check sees all eight, the extraction finds the formula
    source = tmp_path / "99_broken.md"
    source.write_text(f"Some prose.\n\n$${BROKEN_MULTIHEAD}$$\n", encoding="utf-8")
    assert len(control_characters(source.read_text(encoding="utf-8"))) == 8
    found, problems = formulas_in(source.read_text(encoding="utf-8"), ROOT / "x.md", lambda offset: "here")
    assert problems == [] and [f.tex for f in found] == [BROKEN_MULTIHEAD]
    # mathtext alone reads a tab as a space: "\top" and "\times" written as "\t" escapes pass its parser, so the
    # control-character rule is what catches them
    _PARSER.parse(f"${for_mathtext(MULTIHEAD.replace(chr(92) + 't', chr(9)))}$")


@pytest.mark.parametrize("tex", [
    r"\fracc{a}{b}",  # an unknown macro
    r"\frac{a}{b",  # an unbalanced brace
    r"\left( a",  # \left without \right
    r"x^2^3",  # a double superscript
    r"\operatorname{softmax}\!\bigg(q\big)\rVert \notamacro",  # an unknown macro after the rewrites
])
def test_broken_tex_is_reported(tex):
    assert math_problem(tex) is not None


@pytest.mark.parametrize("rule", MATHJAX_ONLY, ids=[r[2] for r in MATHJAX_ONLY])
def test_each_rewrite_gives_tex_that_mathtext_parses(rule):
    _pattern, _replacement, example, reason = rule
    assert reason and math_problem(example) is None


def test_extraction_skips_code_and_reads_inline_math():
    markdown = (
        "Costs $5 and $10, `echo $HOME` and\n```bash\nrm $$x\n```\n"
        "inline $a^2 + b^2$, display $$\\frac{1}{2}$$ and an escaped \\$ sign."
    )
    found, problems = formulas_in(markdown, ROOT / "x.md", lambda offset: "here")
    assert problems == []
    assert [(f.tex, f.display) for f in found] == [("\\frac{1}{2}", True), ("a^2 + b^2", False)]
    _, problems = formulas_in("an unclosed $$x^2", ROOT / "x.md", lambda offset: "here")
    assert problems and "without its closing" in problems[0]

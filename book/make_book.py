"""Build the course's website into ``_build/book/`` (``make book``; ``make book EXECUTE=1`` re-executes first).

Sphinx cannot take pages from outside its source folder, so the pages are first assembled into
``_build/book-src/``, laid out as in the repository (so that a chapter's Colab link names its path there):

- ``index.md``: the README, the landing page; its links to files that are not pages of the book (run logs, the
  changelog, ...) point at the repository instead;
- ``chapters/NN_slug.ipynb``: every chapter with its *stored* outputs (with ``--execute``: outputs of a fresh run of
  its ``.py``, quick mode unless ``WF_QUICK=0``), a line under its title with the hardware it needs and how long
  its stored outputs took (the chapter's own title cell carries its "Open in Colab" link, ``wf_lessons.notebooks``),
  and each widget view replaced by a note: a static page cannot run a widget, and the figure the widget redraws is
  stored just above it (``wf_lessons.interactive``);
- ``chapters/paper_notes.md``, ``coursework.md`` (``book/coursework.md``) and ``api/``: one page per module of
  ``wf_lessons``, its public names (``__all__``) with their docstrings.

Then ``sphinx-build`` runs with ``book/conf.py``; warnings fail the build.
"""

from __future__ import annotations

import argparse
import os
import pkgutil
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

BOOK = Path(__file__).resolve().parent
REPO = BOOK.parent
SOURCE = REPO / "_build" / "book-src"
OUT = REPO / "_build" / "book"
DOCTREES = REPO / "_build" / "book-doctrees"
BRANCH = "main"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = (
    '<p class="wf-widget-note"><strong>Interactive controls</strong> (ipywidgets) stand here when the chapter runs: '
    "a static page cannot run them.{figure} Open the chapter in JupyterLab or Colab to move them.</p>"
)
FIGURE_ABOVE = " The figure above is their first state."
README_SCREENSHOT = "book/landing.png"  # the README shows the landing page; the landing page does not show itself
LINK = re.compile(r"(!?\[[^\]]*\])\(([^)\s]+)\)")


def repository_url() -> str:
    """The repository's public address, from ``[project.urls] Repository`` in ``pyproject.toml`` (set there only)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    url = project.get("urls", {}).get("Repository")
    if not url or not url.startswith("https://github.com/"):
        raise SystemExit("pyproject.toml needs [project.urls] Repository = \"https://github.com/OWNER/NAME\" "
                         "(the book's Colab links are made from it)")
    return url.rstrip("/")


def colab_url(path: str) -> str:
    """Where Colab opens the repository file ``path`` (e.g. ``chapters/01_....ipynb``) from GitHub."""
    return f"https://colab.research.google.com/github/{repository_url().removeprefix('https://github.com/')}" \
           f"/blob/{BRANCH}/{path}"


def chapters() -> list[Path]:
    """The chapter notebooks, in order."""
    return sorted((REPO / "chapters").glob("[0-9][0-9]_*.ipynb"))


def modules() -> list[str]:
    """Every module of ``wf_lessons`` (``__main__`` modules aside), as the API reference lists them."""
    import wf_lessons

    names = [m.name for m in pkgutil.walk_packages(wf_lessons.__path__, "wf_lessons.")]
    return ["wf_lessons"] + sorted(n for n in names if not n.endswith("__main__"))


# --- pages -----------------------------------------------------------------------------------------------------


def rewrite_links(text: str, page: Path) -> str:
    """Links of a Markdown file at repository path ``page``: kept when they reach a page of the book, else pointed at
    the repository (a run log, the changelog, a folder). External links and anchors are left alone."""
    in_book = {"README.md", "chapters/paper_notes.md"} | {p.relative_to(REPO).as_posix() for p in chapters()}

    def fix(match: re.Match) -> str:
        label, target = match.groups()
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        resolved = (REPO / page.parent / path).resolve()
        relative = resolved.relative_to(REPO).as_posix()
        if relative in in_book:
            return match.group(0)
        kind = "tree" if resolved.is_dir() else "blob"
        return f"{label}({repository_url()}/{kind}/{BRANCH}/{relative}{'#' + anchor if anchor else ''})"

    return LINK.sub(fix, text)


def hardware_by_chapter() -> dict[str, str]:
    """Chapter number -> its hardware column in the README's chapter table (the one place that says it)."""
    rows = re.findall(r"^\| (\d\d) \| .*? \| (.*?) \| .*? \| .*? \|$", (REPO / "README.md").read_text(), re.M)
    return dict(rows)


def chapter_line(notebook_path: Path, metadata: dict, hardware: dict[str, str]) -> str:
    """The line under a chapter's title: hardware and how its stored outputs were made (the chapter's title cell
    already carries its Open in Colab link: the page shows it once)."""
    number = notebook_path.name[:2]
    parts = [f"**Hardware:** {hardware.get(number, 'see the README')}"]
    rendered = metadata.get("wf_lessons", {})
    if "render_seconds" in rendered:
        mode = "quick mode (`WF_QUICK=1`)" if rendered.get("quick") else "full mode"
        where = f" on {rendered['rendered_on']}" if rendered.get("rendered_on") else ""
        parts.append(f"**outputs below:** {mode}, {rendered['render_seconds']:.0f} s{where}")
    return "{.wf-chapter-line}\n" + " · ".join(parts)


def stage_notebook(notebook_path: Path, execute: bool, hardware: dict[str, str]):
    """A chapter's notebook as the book shows it (see the module docstring)."""
    import nbformat

    if execute:
        from wf_lessons import notebooks

        notebook = notebooks.execute(notebook_path.with_suffix(".py"))
    else:
        notebook = nbformat.read(notebook_path, as_version=4)
    notebook.metadata.pop("widgets", None)  # the widget state: nothing on a static page reads it
    for cell in notebook.cells:
        outputs = cell.get("outputs", [])
        for i, output in enumerate(outputs):
            if WIDGET_VIEW in output.get("data", {}):
                figure = any("image/png" in before.get("data", {}) for before in outputs[:i])
                output["data"] = {"text/html": WIDGET_NOTE.format(figure=FIGURE_ABOVE if figure else "")}
    title = notebook.cells[0]
    if title.cell_type != "markdown" or not title.source.startswith("# "):
        raise SystemExit(f"{notebook_path.name}: the first cell must be Markdown starting with the '# ' title")
    heading, _, rest = title.source.partition("\n")
    line = chapter_line(notebook_path, notebook.metadata, hardware)
    title.source = f"{heading}\n\n{line}\n\n{rest.lstrip()}"
    return notebook


def landing_page() -> str:
    lines = [line for line in (REPO / "README.md").read_text().splitlines() if README_SCREENSHOT not in line]
    text = rewrite_links("\n".join(lines) + "\n", Path("README.md"))
    chapter_docs = "\n".join(p.relative_to(REPO).with_suffix("").as_posix() for p in chapters())
    return (
        text
        + f"\n```{{toctree}}\n:hidden:\n:caption: Chapters\n\n{chapter_docs}\n```\n"
        + "\n```{toctree}\n:hidden:\n:caption: Reference\n\nchapters/paper_notes\ncoursework\napi/index\n```\n"
    )


def readme_section(title: str) -> str:
    """The body of the README's ``## title`` section (up to the next ``## `` heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", (REPO / "README.md").read_text(), re.M | re.S)
    if match is None:
        raise SystemExit(f"README.md has no section '## {title}' (book/coursework.md includes it)")
    return match.group(1).strip() + "\n"


def coursework_page() -> str:
    """``book/coursework.md`` with the README's install notes and locations table in place of its marker."""
    text = (BOOK / "coursework.md").read_text()
    marker = re.search(r"^<!-- the README's section \"(.+?)\" goes here.*-->$", text, re.M)
    if marker is None:
        raise SystemExit("book/coursework.md lost its marker for the README's section")
    text = text.replace(marker.group(0), readme_section(marker.group(1)))
    return rewrite_links(text, Path("coursework.md"))  # staged at the book's root, as the README is


def api_directives(name: str) -> str:
    """reStructuredText that documents module ``name``: its docstring, then each name of its ``__all__`` in order
    (named one by one: autodoc finds module-level constants only when they carry a ``#:`` comment). A module without
    ``__all__`` lists what autodoc finds defined in it."""
    import importlib
    import inspect

    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return f".. automodule:: {name}\n"
    lines = [f".. automodule:: {name}\n   :no-members:\n"]
    for public in exported:
        obj = getattr(module, public)
        if inspect.isclass(obj):
            kind = "autoexception" if issubclass(obj, BaseException) else "autoclass"
            lines.append(f".. {kind}:: {name}.{public}\n")
        elif callable(obj):
            lines.append(f".. autofunction:: {name}.{public}\n")
        else:
            long = len(repr(obj)) > 100  # a table of presets is read in the source, not in a one-line repr
            lines.append(f".. autodata:: {name}.{public}\n" + ("   :no-value:\n" if long else ""))
    return "\n".join(lines)


def api_pages() -> dict[str, str]:
    """``api/index.md`` and one page per module: its docstring and public names (see :func:`api_directives`)."""
    import importlib

    pages, rows = {}, []
    for name in modules():
        module = importlib.import_module(name)
        summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ").replace("|", "\\|")
        rows.append(f"| {{doc}}`{name} <{name}>` | {summary} |")
        # autodoc writes reStructuredText: in a MyST page it must run inside eval-rst
        pages[f"api/{name}.md"] = f"# `{name}`\n\n```{{eval-rst}}\n{api_directives(name)}```\n"
    index = (
        "# API reference\n\nEvery module of the `wf_lessons` package: its docstring, then the public names it exports "
        "(its `__all__`) with their docstrings. `python -m wf_lessons.envcheck where` prints where files go; "
        "{doc}`../coursework` shows the calls most coursework needs.\n\n"
        "| module | what it holds |\n|---|---|\n" + "\n".join(rows) + "\n\n"
        "```{toctree}\n:hidden:\n\n" + "\n".join(modules()) + "\n```\n"
    )
    pages["api/index.md"] = index
    return pages


def stage(execute: bool = False) -> Path:
    """Assemble the book's sources into ``_build/book-src/`` (emptied first)."""
    shutil.rmtree(SOURCE, ignore_errors=True)
    (SOURCE / "chapters").mkdir(parents=True)
    (SOURCE / "api").mkdir()
    import nbformat

    (SOURCE / "index.md").write_text(landing_page())
    notes = REPO / "chapters" / "paper_notes.md"
    (SOURCE / "chapters" / "paper_notes.md").write_text(rewrite_links(notes.read_text(), Path("chapters/x.md")))
    (SOURCE / "coursework.md").write_text(coursework_page())
    hardware = hardware_by_chapter()
    for path in chapters():
        nbformat.write(stage_notebook(path, execute, hardware), str(SOURCE / "chapters" / path.name))
    for name, text in api_pages().items():
        (SOURCE / name).write_text(text)
    return SOURCE


def sphinx_build(jobs: str = "auto") -> None:
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(BOOK), "-d", str(DOCTREES),
               "-W", "--keep-going", "-q", "-j", jobs, str(SOURCE), str(OUT)]
    result = subprocess.run(command, cwd=REPO)
    if result.returncode:
        raise SystemExit(f"sphinx-build failed (exit status {result.returncode}); its messages are above")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--execute", action="store_true",
                        help="run every chapter's .py in a fresh kernel first (quick mode unless WF_QUICK=0) instead "
                             "of showing the stored outputs; chapters/ is not changed")
    parser.add_argument("--jobs", default="auto", help="sphinx-build's -j (default: auto)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.execute:
        os.environ.setdefault("WF_QUICK", "1")
        os.environ.setdefault("TQDM_DISABLE", "1")
    stage(args.execute)
    sphinx_build(args.jobs)
    print(f"book: {OUT.relative_to(REPO)}/index.html ({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

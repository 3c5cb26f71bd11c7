"""Sphinx configuration of the course's website (``make book``; ``book/make_book.py`` assembles the sources first).

Everything a page needs is served from the site itself: MathJax comes from the ``sphinx-mathjax-offline`` package
(copied into ``_static/mathjax/``), the theme's fonts and icons from the theme, the search index from Sphinx. Nothing
is fetched when the site is built or read. Notebooks are shown with their stored outputs; ``book/make_book.py
--execute`` runs them before the build, never Sphinx.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parent
sys.path.insert(0, str(BOOK))

import make_book  # noqa: E402  (book/make_book.py: the repository address, shared with the page assembly)

project = "wf-lessons"
author = "the wf-lessons authors"
copyright = "the wf-lessons authors; the WeightFormer paper: R. He, D. Han, G. Huang"
html_title = "wf-lessons"
html_favicon = "static/favicon.svg"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx_copybutton",
    "sphinx.ext.githubpages",  # writes .nojekyll, so that a GitHub Pages site keeps the _static/ folders
]

# --- pages -----------------------------------------------------------------------------------------------------
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "attrs_block"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # stored outputs; `make book EXECUTE=1` re-executes before Sphinx runs (book/make_book.py)
nb_ipywidgets_js = {}  # never load the widget manager (it comes from a CDN); make_book.py replaces widget views
nb_merge_streams = True
suppress_warnings = ["mystnb.unknown_mime_type"]

# --- math, served from this site ---------------------------------------------------------------------------------
_mathjax_spec = importlib.util.find_spec("sphinx-mathjax-offline")
if _mathjax_spec is None or not _mathjax_spec.submodule_search_locations:
    raise RuntimeError("the book needs MathJax from the `sphinx-mathjax-offline` package: pip install -e '.[book]'")
html_static_path = [str(Path(next(iter(_mathjax_spec.submodule_search_locations))) / "static"), "static"]
mathjax_path = "mathjax/tex-chtml.js"

# --- API reference -----------------------------------------------------------------------------------------------
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = False

# --- theme: the sidebar is the chapter order; the launch button opens a chapter in Colab -------------------------
html_theme = "sphinx_book_theme"
html_css_files = ["book.css"]
html_last_updated_fmt = None
html_copy_source = True
html_theme_options = {
    "repository_url": make_book.repository_url(),
    "repository_branch": make_book.BRANCH,
    "path_to_docs": "",  # the staged sources mirror the repository's layout (chapters/NN_slug.ipynb)
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
    "home_page_in_toc": True,
    "show_toc_level": 2,
}
html_context = {"default_mode": "light"}
copybutton_prompt_text = r"\$ "
copybutton_prompt_is_regexp = True


# The package's docstrings write absolute values as |x| (``|gradient| summed``); reStructuredText would read that as a
# substitution and fail the build. Outside literal text and literal blocks, such bars are escaped.
_ABSOLUTE = re.compile(r"(?<![\\|])\|([^|`\s][^|`]*?)\|(?!\|)")


def _escape_absolute_values(app, what, name, obj, options, lines: list[str]) -> None:
    literal_indent = None  # the indentation of the line that opened a literal block (ending with ::)
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and line.strip() and indent <= literal_indent:
            literal_indent = None
        if literal_indent is None:
            parts = re.split(r"(``.*?``)", line)
            lines[i] = "".join(p if p.startswith("``") else _ABSOLUTE.sub(r"\\|\1\\|", p) for p in parts)
            if line.rstrip().endswith("::"):
                literal_indent = indent


def _drop_type_docstrings(app, what, name, obj, options, lines: list[str]) -> None:
    """A constant without a ``#:`` comment would show its type's docstring (``str(object='') -> str ...``)."""
    own = type(obj).__doc__
    if what in ("data", "attribute") and isinstance(own, str) and " ".join(lines).split() == own.split():
        lines.clear()


def setup(app):
    app.connect("autodoc-process-docstring", _drop_type_docstrings)
    app.connect("autodoc-process-docstring", _escape_absolute_values)

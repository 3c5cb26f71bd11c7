"""The website edition (``make book``) as a reader meets it: built, served on 127.0.0.1, every page opened in headless
Chromium.

The build runs without a network where the machine allows a network namespace (``unshare -rn``), so a fetch at build
time fails it. A crawl from the landing page opens every page the site links to and records what a reader would
meet; the tests below check it: no broken internal link, anchor or image; every request of every page answered by
127.0.0.1 (any other host is refused and reported); no console error; math typeset by MathJax with no error and no
raw TeX left visible; every figure a chapter stores shown as an image; widgets shown as a note, never "Error
displaying widget"; a Colab link on every chapter; the API reference lists every public name; the search page finds
"bilateral". Screenshots of the landing page and two chapters go to ``.browser-test/screenshots/book-*.png``.
"""

from __future__ import annotations

import importlib
import os
import sys
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "book"))
import make_book  # noqa: E402  (book/make_book.py)

VIEWPORT = {"width": 1280, "height": 1000}
MAX_PAGES = 200  # a crawl that finds more has found a loop, not the book
SCREENSHOTS = {"index.html": "book-landing", "chapters/01_attention_is_a_dynamic_mlp.html": "book-chapter01",
               "chapters/07_training_on_cifar10.html": "book-chapter07"}
RAW_TEX = ("$$", "\\frac", "\\begin{", "\\(", "\\[", "\\operatorname")

# What a page holds once loaded and typeset (run in the page).
INSPECT = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const imgs = Array.from(document.images);
  for (const img of imgs) img.loading = 'eager';
  await Promise.all(imgs.map((img) => img.decode().catch(() => null)));
  const article = document.querySelector('article') || document.body;
  const copy = article.cloneNode(true);
  copy.querySelectorAll('pre, code, mjx-container, script, style, .highlight').forEach((el) => el.remove());
  const math = Array.from(article.querySelectorAll('.math'));
  return {
    title: document.title,
    links: Array.from(document.querySelectorAll('a[href]')).map((a) => a.href),
    ids: Array.from(document.querySelectorAll('[id]')).map((el) => el.id),
    images: imgs.map((img) => ({src: img.currentSrc || img.src, width: img.naturalWidth,
                                output: !!img.closest('.cell_output')})),
    math: math.length,
    tex: window.MathJax && MathJax.startup && MathJax.startup.document
      ? Array.from(MathJax.startup.document.math).map((m) => m.math) : [],
    typeset: math.filter((el) => el.querySelector('mjx-container')).length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    text: copy.innerText,
    widgetNotes: article.querySelectorAll('.wf-widget-note').length,
  };
}"""


@dataclass
class Visit:
    """One page as the crawl found it."""

    path: str
    title: str = ""
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    images: list[dict] = field(default_factory=list)
    math: int = 0
    typeset: int = 0
    math_errors: int = 0
    tex: list[str] = field(default_factory=list)
    text: str = ""
    widget_notes: int = 0
    console_errors: list[str] = field(default_factory=list)
    status: int | None = None


@dataclass
class Crawl:
    pages: dict[str, Visit]
    foreign_requests: list[tuple[str, str]]  # (page, URL) of every request to a host other than 127.0.0.1
    site: object


def _path(site, url: str) -> str | None:
    """The site path of a URL of the served book (``chapters/01_x.html``), or None for any other URL."""
    if not url.startswith(site.url + "/"):
        return None
    path = urllib.parse.urlsplit(url).path.lstrip("/")
    return path or "index.html"


@pytest.fixture(scope="module")
def crawl(site, browser, artifacts) -> Crawl:
    """Every page reachable by links from the landing page (and the search page), opened in Chromium, with what each
    one holds."""
    context = browser.new_context(viewport=VIEWPORT)
    foreign: list[tuple[str, str]] = []
    current = {"path": ""}

    def route(route_, request):
        if request.url.startswith(site.url + "/") or request.url.startswith("data:"):
            route_.continue_()
        else:
            foreign.append((current["path"], request.url))
            route_.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    pages: dict[str, Visit] = {}
    queue = deque(["index.html", "search.html"])  # the search page is reached through a form, not a link
    try:
        while queue and len(pages) < MAX_PAGES:
            path = queue.popleft()
            if path in pages:
                continue
            current["path"], visit = path, Visit(path)
            pages[path] = visit
            errors.clear()
            response = page.goto(f"{site.url}/{path}", wait_until="load")
            visit.status = response.status if response else None
            if visit.status != 200:
                continue
            found = page.evaluate(INSPECT)
            visit.title, visit.links, visit.ids = found["title"], found["links"], set(found["ids"])
            visit.images, visit.math, visit.typeset = found["images"], found["math"], found["typeset"]
            visit.math_errors, visit.text, visit.widget_notes = found["mathErrors"], found["text"], found["widgetNotes"]
            visit.tex = found["tex"]
            visit.console_errors = list(errors)
            if path in SCREENSHOTS:
                page.screenshot(path=str(artifacts / "screenshots" / f"{SCREENSHOTS[path]}.png"))
            for link in visit.links:
                target = _path(site, link.split("#")[0].split("?")[0])
                if target and target.endswith(".html") and target not in pages:
                    queue.append(target)
    finally:
        context.close()
    return Crawl(pages, foreign, site)


def _chapter_pages() -> dict[str, Path]:
    return {f"chapters/{p.stem}.html": p for p in make_book.chapters()}


def test_the_crawl_reached_every_page_of_the_book(crawl, artifacts):
    expected = {"index.html", "coursework.html", "chapters/paper_notes.html", "api/index.html", "search.html"}
    expected |= set(_chapter_pages()) | {f"api/{name}.html" for name in make_book.modules()}
    missing = sorted(expected - set(crawl.pages))
    assert not missing, f"pages no link reaches from the landing page: {missing}"
    assert len(crawl.pages) < MAX_PAGES, f"the crawl stopped at {MAX_PAGES} pages"
    with open(artifacts / "summary.txt", "a") as log:
        print(f"book: built in {crawl.site.build_seconds:.0f} s (without network: {crawl.site.built_without_network}); "
              f"{len(crawl.pages)} pages crawled", file=log)


def test_no_broken_internal_link_anchor_or_image(crawl):
    problems = []
    for visit in crawl.pages.values():
        if visit.status != 200:
            problems.append(f"{visit.path}: HTTP {visit.status}")
            continue
        for link in visit.links:
            base, _, anchor = link.partition("#")
            target = _path(crawl.site, base.split("?")[0])
            if target is None:
                continue
            if not (crawl.site.root / urllib.parse.unquote(target)).is_file():
                problems.append(f"{visit.path}: link to a missing file {target}")
            elif anchor and target in crawl.pages and crawl.pages[target].status == 200:
                if urllib.parse.unquote(anchor) not in crawl.pages[target].ids:
                    problems.append(f"{visit.path}: link to a missing anchor {target}#{anchor}")
        for image in visit.images:
            if image["width"] == 0:
                problems.append(f"{visit.path}: image not shown: {image['src']}")
    failed = sorted({f"{path} (HTTP {status})" for path, status in crawl.site.requests if status >= 400})
    problems += [f"the server answered an error to {f}" for f in failed]
    assert not problems, "\n".join(problems[:50])


def test_every_request_stays_on_127_0_0_1(crawl):
    assert not crawl.foreign_requests, "requests to other hosts (refused by the test):\n" + "\n".join(
        f"{page}: {url}" for page, url in crawl.foreign_requests[:30])


def test_no_console_error(crawl):
    problems = [f"{v.path}: {e}" for v in crawl.pages.values() for e in v.console_errors]
    assert not problems, "\n".join(problems[:30])


def test_math_is_typeset_on_every_page(crawl):
    problems = []
    for visit in crawl.pages.values():
        if visit.math != visit.typeset:
            problems.append(f"{visit.path}: {visit.math - visit.typeset} of {visit.math} formulas not typeset")
        if visit.math_errors:
            problems.append(f"{visit.path}: {visit.math_errors} MathJax errors")
        raw = [tex for tex in RAW_TEX if tex in visit.text]
        if raw:
            problems.append(f"{visit.path}: raw TeX visible in the text: {raw}")
    assert not problems, "\n".join(problems)
    chapter01 = crawl.pages["chapters/01_attention_is_a_dynamic_mlp.html"]
    source = (REPO_ROOT / "chapters" / "01_attention_is_a_dynamic_mlp.py").read_text()
    assert chapter01.math >= source.count("$$") // 2, "chapter 01 shows fewer formulas than its source has"
    multi_head = [tex for tex in chapter01.tex if "W_O^t" in tex and "sum_{t=1}^{h}" in tex]
    assert multi_head, "chapter 01's multi-head formula was not typeset by MathJax"


def test_every_chapter_shows_its_stored_figures(crawl):
    problems = []
    for path, notebook in _chapter_pages().items():
        stored = sum("image/png" in o.get("data", {}) for c in nbformat.read(notebook, as_version=4).cells
                     for o in c.get("outputs", []))
        shown = [i for i in crawl.pages[path].images if i["output"] and i["width"] > 0]
        if len(shown) != stored:
            problems.append(f"{path}: {len(shown)} figures shown, {stored} stored in {notebook.name}")
    assert not problems, "\n".join(problems)


def test_widgets_show_a_note_never_an_error(crawl):
    problems = []
    for path, notebook in _chapter_pages().items():
        views = sum(make_book.WIDGET_VIEW in o.get("data", {}) for c in nbformat.read(notebook, as_version=4).cells
                    for o in c.get("outputs", []))
        visit = crawl.pages[path]
        if "Error displaying widget" in visit.text:
            problems.append(f"{path}: 'Error displaying widget'")
        if visit.widget_notes != views:
            problems.append(f"{path}: {visit.widget_notes} widget notes for {views} stored widget views")
    assert not problems, "\n".join(problems)
    assert any(crawl.pages[p].widget_notes for p in _chapter_pages()), "no chapter stores a widget: test the test"


def test_every_chapter_links_to_colab(crawl):
    for path, notebook in _chapter_pages().items():
        colab = make_book.colab_url(notebook.relative_to(REPO_ROOT).as_posix())
        assert colab.startswith("https://colab.research.google.com/github/")
        assert colab in crawl.pages[path].links, f"{path} has no link to {colab}"


def test_api_reference_lists_every_public_name(crawl):
    problems = []
    for name in make_book.modules():
        module = importlib.import_module(name)
        visit = crawl.pages[f"api/{name}.html"]
        if name not in visit.ids and f"module-{name}" not in visit.ids:
            problems.append(f"api/{name}.html does not document the module")
        for public in getattr(module, "__all__", ()):
            if f"{name}.{public}" not in visit.ids:
                problems.append(f"api/{name}.html: no entry for {name}.{public}")
    assert not problems, "\n".join(problems[:50])


def test_search_finds_bilateral(site, browser, artifacts):
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(f"{site.url}/search.html?q=bilateral")
        results = page.locator("ul.search li")
        results.first.wait_for(timeout=60_000)
        hrefs = [results.nth(i).locator("a").first.get_attribute("href") for i in range(results.count())]
        page.screenshot(path=str(artifacts / "screenshots" / "book-search.png"))
    finally:
        context.close()
    assert any("02_dynamic_linear_layers" in (h or "") for h in hrefs), f"search for 'bilateral' found {hrefs}"


def test_book_builds_without_network(site):
    """The build ran in a network namespace (no interface but loopback): nothing it needs is fetched."""
    if not site.built_without_network:
        message = "this machine allows no network namespace (`unshare -rn`): the book was built with the network on"
        if os.environ.get("WF_BROWSER_TEST_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)

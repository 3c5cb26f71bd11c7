"""The course as a reader meets it: every chapter run in JupyterLab, in a real (headless) browser.

For every chapter notebook: open it, clear its outputs, Run All (from the Run menu), wait until the kernel is idle,
then check fresh execution counts 1..n, no error or stderr output, no "Error displaying widget", and, for every
interactive widget, that its output area shows something before any interaction and changes when one control
changes. One chapter's `.py` is opened with "Open With → Jupytext Notebook" from the file browser and must show the
outputs of its paired `.ipynb`, on a kernel of this checkout's environment. Nothing under chapters/ may change.
Screenshots go to `.browser-test/screenshots/`. Run with `make browser-test` (`PYTEST_ARGS="-k 01_"`: one chapter).
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((REPO_ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
RUN_TIMEOUT = 600  # seconds for one chapter's Run All (quick mode takes well under a minute on 2 cores)
WIDGET_TIMEOUT = 180  # seconds for a widget's output to follow a change
VIEWPORT = {"width": 1280, "height": 1600}
MAX_PAGES = 40  # screenshots per chapter at most

# Helpers installed in every page: they find a document's panel through JupyterLab's application object
# (exposed by `--LabApp.expose_app_in_browser`) and summarise a notebook's model.
HELPERS = """
window.__wf = {
  panel(path) {
    for (const widget of window.jupyterapp.shell.widgets('main')) {
      if (widget.context && widget.context.path === path) return widget;
    }
    return null;
  },
  text(value) { return Array.isArray(value) ? value.join('') : String(value ?? ''); },
  state(path) {
    const panel = window.__wf.panel(path);
    if (!panel || !panel.content.model) return null;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    const cells = [];
    const model = panel.content.model;
    for (let i = 0; i < model.cells.length; i++) {
      const cell = model.cells.get(i);
      if (cell.type !== 'code') continue;
      const outputs = [];
      for (let j = 0; j < cell.outputs.length; j++) {
        const o = cell.outputs.get(j).toJSON();
        outputs.push({
          type: o.output_type, name: o.name || null, ename: o.ename || null, evalue: o.evalue || null,
          text: o.output_type === 'stream' ? window.__wf.text(o.text).slice(0, 2000) : null,
          traceback: o.traceback ? window.__wf.text(o.traceback.slice(-3).join('\\n')).slice(0, 3000) : null,
          mimes: o.data ? Object.keys(o.data) : [],
        });
      }
      cells.push({index: i, count: cell.executionCount, source: cell.sharedModel.getSource(),
                  outputs});
    }
    return {status: kernel ? kernel.status : null, connection: kernel ? kernel.connectionStatus : null, cells,
            total: model.cells.length};
  },
};
"""


@pytest.fixture
def page(browser, lab):
    """A fresh JupyterLab page (layout reset) with the left sidebar collapsed; its kernels are shut down after."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(HELPERS)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(lab.page_url("lab?reset"))
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    settings = page.evaluate(
        """async () => {
          const s = window.jupyterapp.serviceManager.settings;
          const docs = await s.fetch('@jupyterlab/docmanager-extension:plugin');
          const notebooks = await s.fetch('@jupyterlab/notebook-extension:tracker');
          return [JSON.parse(docs.raw).autosave, JSON.parse(notebooks.raw).windowingMode];  // the user settings
        }"""
    )
    assert settings == [False, "none"], f"the test's JupyterLab settings were not applied: {settings}"
    try:
        yield page
    finally:
        try:
            page.evaluate(
                """async () => {
                  for (const w of window.jupyterapp.shell.widgets('main')) {
                    if (w.sessionContext) await w.sessionContext.shutdown();
                  }
                }"""
            )
        except Exception:
            pass
        context.close()


def _open(page, path: str, factory: str) -> None:
    page.evaluate(
        """async ([path, factory]) => {
          const widget = await window.jupyterapp.commands.execute('docmanager:open', {path, factory});
          await widget.context.ready;
        }""",
        [path, factory],
    )
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")


def _wait_idle_kernel(page, path: str, timeout: float = 120) -> None:
    page.wait_for_function(
        """(path) => { const s = window.__wf.state(path); return s && s.status === 'idle'; }""",
        arg=path,
        timeout=timeout * 1000,
    )


def _run_all(page, path: str) -> dict:
    """Clear outputs, Run All from the Run menu, and wait until every code cell ran (or one failed) and the kernel
    is idle; returns the notebook's state."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    cleared = page.evaluate("(path) => window.__wf.state(path)", path)
    stale = [c["index"] for c in cleared["cells"] if c["count"] is not None or c["outputs"]]
    assert not stale, f"{path}: cells {stale} kept their stored outputs after 'Clear Outputs of All Cells'"
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        state = page.evaluate("(path) => window.__wf.state(path)", path)
        if state["status"] in ("dead", "unknown") or state["connection"] == "disconnected":
            pytest.fail(f"{path}: the kernel is {state['status']} ({state['connection']}) during Run All")
        finished = all(c["count"] is not None for c in state["cells"])
        failed = any(o["type"] == "error" for c in state["cells"] for o in c["outputs"])
        if state["status"] == "idle" and (finished or failed):
            time.sleep(1)  # let late display messages (widgets, figures) arrive
            return page.evaluate("(path) => window.__wf.state(path)", path)
        time.sleep(1)
    pytest.fail(f"{path}: Run All did not finish within {RUN_TIMEOUT} s")


def _screenshots(page, folder: Path, stem: str) -> list[Path]:
    """Screenshots of the whole notebook, one viewport at a time (the notebook scrolls inside the page)."""
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    height = page.evaluate(f"() => document.querySelector('{scroller}').scrollHeight")
    step = page.evaluate(f"() => document.querySelector('{scroller}').clientHeight")
    paths = []
    for i, top in enumerate(range(0, max(height, 1), max(step - 40, 1))):
        if i >= MAX_PAGES:
            break
        page.evaluate(f"(top) => {{ document.querySelector('{scroller}').scrollTop = top; }}", top)
        page.wait_for_timeout(150)
        path = folder / f"{stem}-{i + 1:02d}.png"
        page.screenshot(path=str(path))
        paths.append(path)
    return paths


def _problems(state: dict) -> list[str]:
    problems = []
    counts = [c["count"] for c in state["cells"]]
    if counts != list(range(1, len(counts) + 1)):
        problems.append(f"execution counts are {counts}, expected 1..{len(counts)}")
    for cell in state["cells"]:
        for o in cell["outputs"]:
            where = f"cell {cell['index']} ({cell['source'][:60]!r})"
            if o["type"] == "error":
                problems.append(f"{where}: {o['ename']}: {o['evalue']}\n{o['traceback']}")
            elif o["type"] == "stream" and o["name"] == "stderr":
                problems.append(f"{where}: stderr output {o['text'][:500]!r}")
    return problems


# --- widgets ---------------------------------------------------------------------------------------------------

# Marks the top-level widget views in the visible notebook (a widget displayed by a cell, not one nested in it).
MARK_WIDGETS = """() => {
  const roots = document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output > .jupyter-widgets');
  let n = 0;
  for (const el of roots) {
    if (el.parentElement.closest('.jupyter-widgets')) continue;
    el.setAttribute('data-wf-widget', String(n++));
  }
  return n;
}"""
CONTROLS = "select, .noUi-handle"


def _output_signature(widget) -> tuple[int, str]:
    """(number of outputs, hash of their HTML) of a widget's output area (an ipywidgets Output or interact's)."""
    html, n = widget.evaluate(
        """(el) => {
          const area = el.querySelector('.widget-output, .jupyter-widgets-output-area');
          if (!area) return [null, 0];
          return [area.innerHTML, area.querySelectorAll('.jp-OutputArea-child').length];
        }"""
    )
    if html is None:
        return -1, ""
    return n, hashlib.sha256(html.encode()).hexdigest()


def _change_one_control(widget) -> str:
    """Change the widget's first dropdown (to another option) or else its first slider (one step); describe it."""
    select = widget.locator("select")
    if select.count():
        select = select.first
        options = select.locator("option")
        current = select.evaluate("(el) => el.selectedIndex")
        other = 1 if current == 0 else 0
        label = options.nth(other).inner_text()
        select.select_option(index=other)
        return f"dropdown -> {label!r}"
    handle = widget.locator(".noUi-handle").first
    value, low = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemin")
    handle.focus()
    key = "ArrowRight" if value == low else "ArrowLeft"
    handle.press(key)
    after = handle.get_attribute("aria-valuenow")
    assert after != value, f"the slider did not move with {key} (value {value})"
    return f"slider {value} -> {after}"


def _check_widgets(page, path: str, folder: Path, stem: str) -> list[str]:
    """Change one control of every interactive widget and check its output area; returns problems found."""
    problems = []
    page.evaluate(MARK_WIDGETS)
    views = page.locator("[data-wf-widget]")
    interactive = [views.nth(i) for i in range(views.count()) if views.nth(i).locator(CONTROLS).count()]
    for k, widget in enumerate(interactive, start=1):
        widget.scroll_into_view_if_needed()
        before = _output_signature(widget)
        widget.screenshot(path=str(folder / f"{stem}-widget{k}-before.png"))
        if before[0] == -1:
            problems.append(f"widget {k}: no output area (ipywidgets Output or interact) under its controls")
            continue
        if before[0] == 0:
            problems.append(f"widget {k}: its output area is empty before any interaction")
        change = _change_one_control(widget)
        deadline = time.monotonic() + WIDGET_TIMEOUT
        after = before
        while time.monotonic() < deadline:
            page.wait_for_timeout(500)
            after = _output_signature(widget)
            if after != before and after[0] > 0:
                _wait_idle_kernel(page, path, timeout=WIDGET_TIMEOUT)
                page.wait_for_timeout(500)
                after = _output_signature(widget)
                break
        widget.screenshot(path=str(folder / f"{stem}-widget{k}-after.png"))
        if after == before or after[0] <= 0:
            problems.append(f"widget {k}: its output area did not change within {WIDGET_TIMEOUT} s after {change}")
        errors = widget.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], '
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'
        )
        if errors.count():
            problems.append(f"widget {k}: error or stderr output after {change}: {errors.first.inner_text()[:500]}")
    return problems, len(interactive)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_in_jupyterlab(page, artifacts, notebook):
    path = notebook.relative_to(REPO_ROOT).as_posix()
    folder = artifacts / "screenshots"
    _open(page, path, "Notebook")
    _wait_idle_kernel(page, path)
    start = time.monotonic()
    state = _run_all(page, path)
    seconds = time.monotonic() - start
    shots = _screenshots(page, folder, notebook.stem)
    problems = _problems(state)
    rendered = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").count()
    if rendered != state["total"]:
        problems.append(f"{rendered} of {state['total']} cells are on the page (the checks below read the page)")
    notebook_text = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").inner_text()
    if "Error displaying widget" in notebook_text:
        problems.append("a widget shows 'Error displaying widget'")
    widget_problems, n_widgets = _check_widgets(page, path, folder, notebook.stem)
    problems += widget_problems
    if "ipywidgets" in notebook.with_suffix(".py").read_text() and n_widgets == 0:
        problems.append("the chapter imports ipywidgets but no interactive widget was found on the page")
    summary = f"{notebook.stem}: Run All took {seconds:.0f} s; {len(shots)} screenshots; {n_widgets} widgets moved"
    with open(artifacts / "summary.txt", "a") as log:
        print(summary + (f"; {len(problems)} problems" if problems else ""), file=log)
    assert not problems, f"{path} in JupyterLab:\n- " + "\n- ".join(problems)


def test_py_source_opens_as_paired_notebook(page, lab, artifacts):
    """'Open With → Jupytext Notebook' on a chapter's .py, from the file browser `make lab` opens on, shows the
    outputs stored in the paired .ipynb, and its kernel runs this checkout's environment."""
    source = min(CHAPTERS).with_suffix(".py")
    path = source.relative_to(REPO_ROOT).as_posix()
    assert lab.redirect("") == "/lab/tree/chapters", "`make lab` should open its file browser on chapters/"
    page.goto(lab.page_url("lab/tree/chapters?reset"))  # that page, without the layout the tests before left
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=120_000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")
    page.evaluate("() => window.jupyterapp.shell.activateById('filebrowser')")
    item = page.locator(".jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=source.name))
    item.click(button="right")
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(r"^Open With$")).hover()
    page.locator(".lm-Menu-content .lm-Menu-itemLabel", has_text=re.compile(r"^Jupytext Notebook$")).click()
    page.wait_for_function("(path) => window.__wf.state(path) !== null", arg=path)
    page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
    page.wait_for_timeout(1000)  # let the outputs render before the screenshots
    state = page.evaluate("(path) => window.__wf.state(path)", path)
    _screenshots(page, artifacts / "screenshots", f"{source.stem}-py-as-notebook")

    stored = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    shown = {c["source"]: (c["count"], len(c["outputs"])) for c in state["cells"]}
    expected = {c.source: (c.get("execution_count"), len(c.outputs)) for c in stored.cells if c.cell_type == "code"}
    common = shown.keys() & expected.keys()  # every code cell, unless the .py was edited since `make chapters`
    assert sum(n for _, n in shown.values()) > 0, f"{path} opened as a notebook shows no outputs: not paired"
    assert common, f"{path} and its .ipynb share no code cell"
    mismatch = {s[:80]: (shown[s], expected[s]) for s in common if shown[s] != expected[s]}
    assert not mismatch, f"{path} does not show its .ipynb's outputs; (count, outputs) shown vs stored: {mismatch}"

    # and its kernel is this checkout's environment (not a kernel registered by another clone)
    _wait_idle_kernel(page, path)
    prefix, package = page.evaluate(
        """async (path) => {
          const kernel = window.__wf.panel(path).sessionContext.session.kernel;
          let out = '';
          const future = kernel.requestExecute(
            {code: 'import sys, wf_lessons\\nprint(sys.prefix)\\nprint(wf_lessons.__file__)', store_history: false});
          future.onIOPub = (msg) => { if (msg.header.msg_type === 'stream') out += msg.content.text; };
          await future.done;
          return out.trim().split('\\n');
        }""",
        path,
    )
    assert Path(prefix) == Path(sys.prefix), f"the notebook's kernel runs in {prefix}, not in {sys.prefix}"
    assert Path(package).is_relative_to(REPO_ROOT), f"the notebook's kernel imports wf_lessons from {package}"


def test_chapters_untouched_by_the_browser_test(lab):
    """Autosave is off and checkpoints live elsewhere: the run leaves chapters/ as it found it."""
    after = lab.chapters_now()
    changed = sorted(p for p in set(after) | set(lab.chapters_before) if after.get(p) != lab.chapters_before.get(p))
    assert not changed, f"files under chapters/ were written or removed while the browser test ran: {changed}"

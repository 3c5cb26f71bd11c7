"""Fixtures of the browser test: a JupyterLab server and a headless Chromium, both stopped at the end.

The tests here are marked `browser` and run only when asked for (`make browser-test`, i.e.
`pytest tests/browser -m browser`); a plain `pytest tests` or `make test` deselects them.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = REPO_ROOT / "Makefile"
ARTIFACTS = REPO_ROOT / ".browser-test"  # screenshots and the server log (ignored by git)
ENABLE_HINT = (
    "to enable it, install headless Chromium from the system's packages (`sudo apt-get install chromium` on "
    "Debian/Ubuntu) and Playwright for Python (`.venv/bin/pip install -e '.[browser]'`); no `playwright install` "
    "is needed, the test drives the system's Chromium"
)
# JupyterLab settings for the test's server: nothing is saved behind the test's back (autosave off), every cell is
# rendered (no windowing: the test reads outputs from the page), and no pop-ups ask about news or updates.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}


def pytest_collection_modifyitems(config, items):
    """Deselect browser tests unless the -m expression names them (`make browser-test` passes `-m browser`)."""
    if "browser" in (config.option.markexpr or ""):
        return
    browser = [item for item in items if item.get_closest_marker("browser")]
    if browser:
        config.hook.pytest_deselected(items=browser)
        items[:] = [item for item in items if not item.get_closest_marker("browser")]


def chromium_path() -> str | None:
    """The system's Chromium (WF_CHROMIUM overrides the search)."""
    if os.environ.get("WF_CHROMIUM"):
        return os.environ["WF_CHROMIUM"] if Path(os.environ["WF_CHROMIUM"]).is_file() else None
    return next((p for name in ("chromium", "chromium-browser") if (p := shutil.which(name))), None)


def _missing(reason: str):
    """Skip on a reader's machine; fail where the browser test is required (CI sets WF_BROWSER_TEST_REQUIRED=1)."""
    message = f"{reason}; {ENABLE_HINT}"
    if os.environ.get("WF_BROWSER_TEST_REQUIRED") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab server: its base URL (with the token as a query) and where its files live."""

    url: str
    token: str
    process: subprocess.Popen
    log_path: Path
    chapters_before: dict[str, tuple[int, int]]  # chapters/ when the server started: path -> (mtime_ns, size)

    def page_url(self, path: str = "lab") -> str:
        return f"{self.url}/{path}{'&' if '?' in path else '?'}token={self.token}"

    def redirect(self, path: str) -> str | None:
        """Where the server sends a browser asking for `path` (the Location of its redirect, without the query)."""

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        try:
            urllib.request.build_opener(NoRedirect).open(self.page_url(path), timeout=10)
        except urllib.error.HTTPError as response:
            return urllib.parse.urlsplit(response.headers.get("Location", "")).path or None
        return None

    def api(self, path: str, method: str = "GET") -> dict | list | None:
        request = urllib.request.Request(
            f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    @staticmethod
    def chapters_now() -> dict[str, tuple[int, int]]:
        return chapters_snapshot()

    def log_tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return "\n".join(lines[-n:])


def chapters_snapshot() -> dict[str, tuple[int, int]]:
    """Every file under chapters/ (hidden ones included, caches excluded) -> (mtime_ns, size)."""
    files = (p for p in (REPO_ROOT / "chapters").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return {p.relative_to(REPO_ROOT).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size) for p in files}


def make_lab_args() -> list[str]:
    """The options `make lab` gives `jupyter lab` (the Makefile is the one place that says how the course is served)."""
    recipe = re.search(r"^lab:.*\n\t\$\(VENV\)/bin/jupyter lab (.*?)\$\(LAB_ARGS\)", MAKEFILE.read_text(), re.M)
    if recipe is None:
        pytest.fail("no `jupyter lab ... $(LAB_ARGS)` line under the Makefile's `lab:` target")
    return shlex.split(recipe.group(1))


def lab_command(port: int, token: str, checkpoints: Path) -> list[str]:
    """The server `make lab` starts (repository root served, file browser on chapters/), on a test port and token."""
    jupyter_lab = Path(sys.executable).with_name("jupyter-lab")
    command = [str(jupyter_lab)] if jupyter_lab.exists() else [sys.executable, "-m", "jupyterlab"]
    command += make_lab_args()
    command += [
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        "--ServerApp.open_browser=False",
        f"--FileCheckpoints.root_dir={checkpoints}",  # checkpoints outside the repository
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the test reads notebook models from it
    ]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    return command


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """`.browser-test/` (screenshots/, summary.txt, jupyterlab.log), emptied of the previous run's results."""
    shutil.rmtree(ARTIFACTS / "screenshots", ignore_errors=True)
    (ARTIFACTS / "summary.txt").unlink(missing_ok=True)
    (ARTIFACTS / "screenshots").mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        _missing("no Chromium found (looked for `chromium` and `chromium-browser` on PATH, and WF_CHROMIUM)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python is not installed")
    return path


@pytest.fixture(scope="session")
def lab(chromium, artifacts, tmp_path_factory) -> Lab:
    """JupyterLab on 127.0.0.1, a free port and a random token, in quick mode; its config, settings, workspaces,
    runtime files and checkpoints live in a temporary folder, so a run leaves nothing in the repository."""
    home = tmp_path_factory.mktemp("jupyterlab")
    settings = home / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = dict(os.environ)
    env.pop("TQDM_DISABLE", None)  # the reader's view: progress bars are widgets in the notebook
    env.update(
        WF_QUICK="1",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        IPYTHONDIR=str(home / "ipython"),
    )
    before = chapters_snapshot()
    port, token = _free_port(), secrets.token_hex(16)
    log_path = artifacts / "jupyterlab.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            lab_command(port, token, home / "checkpoints"),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Lab(f"http://127.0.0.1:{port}", token, process, log_path, chapters_before=before)
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)  # a CI timeout still runs the teardown below
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {process.returncode}:\n{server.log_tail()}")
            try:
                server.api("status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 120 s:\n{server.log_tail()}")
                time.sleep(0.5)
        yield server
    finally:
        _stop(server)
        signal.signal(signal.SIGTERM, previous_handler)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) from Linux's /proc (empty elsewhere)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(stat.parent.name)] = (int(fields[1]), fields[19])
    return table


def _descendants(pid: int) -> dict[int, str]:
    """Processes below `pid` as pid -> start time (kernels run in sessions of their own, so not in its group)."""
    table = _processes()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, start) in table.items():
            if ppid == parent and child not in found:
                found[child] = start
                todo.append(child)
    return found


def _stop(server: Lab) -> None:
    """Shut the server down (kernels included) through its API, then kill whatever it started that is left."""
    process = server.process
    started = _descendants(process.pid)
    if process.poll() is None:
        try:
            server.api("shutdown", method="POST")
            process.wait(timeout=30)
        except Exception:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    alive = _processes()
    for pid, start in started.items():
        if pid in alive and alive[pid][1] == start:  # the same process, not a reused pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture(scope="session")
def browser(chromium):
    """Headless Chromium (the system's, not a Playwright download), closed at the end."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chrome = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield chrome
        finally:
            chrome.close()
    finally:
        playwright.stop()


# --- the website edition (make book) -----------------------------------------------------------------------------

BOOK_BUILD = REPO_ROOT / "book" / "make_book.py"
BOOK_OUT = REPO_ROOT / "_build" / "book"
BOOK_TIMEOUT = 900  # seconds for book/make_book.py (under a minute on 2 idle cores)


@dataclass
class Site:
    """The built book served on 127.0.0.1: its base URL, and every request the server answered (path, status)."""

    url: str
    root: Path
    build_seconds: float
    built_without_network: bool
    requests: list[tuple[str, int]] = field(default_factory=list)


def _no_network_prefix() -> list[str]:
    """``unshare -rn`` (a network namespace with no interface but loopback) where this machine allows one."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True)
    return [unshare, "-rn"] if probe.returncode == 0 else []


@pytest.fixture(scope="session")
def site(chromium, artifacts) -> Site:
    """``make book``'s build (``book/make_book.py``), run without a network where the machine allows it (then a fetch
    at build time fails the build), served from ``_build/book/`` on 127.0.0.1 by a server that records every
    request and its status."""
    prefix = _no_network_prefix()
    start = time.monotonic()
    build = subprocess.run(prefix + [sys.executable, str(BOOK_BUILD)], cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=BOOK_TIMEOUT)
    seconds = time.monotonic() - start
    (artifacts / "book-build.log").write_text(build.stdout + build.stderr)
    if build.returncode:
        output = (build.stdout + build.stderr)[-4000:]
        pytest.fail(f"book/make_book.py failed (exit status {build.returncode}):\n{output}")
    answered: list[tuple[str, int]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code="-", size="-"):
            answered.append((self.path, int(getattr(code, "value", code))))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(BOOK_OUT)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_address[1]}", BOOK_OUT, seconds, bool(prefix), answered)
    finally:
        server.shutdown()
        server.server_close()

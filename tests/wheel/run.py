"""The install path, tested: build the wheel, install it into a fresh virtual environment outside the checkout, and
run the coursework smoke test (``smoke.py``) from an empty folder, as a student would. ``make wheel-test`` and CI
(``.ci/run``) run it; it needs CIFAR-10 in the checkout's ``data/`` first (``make data``) and downloads nothing but
packages from the package index.

    python tests/wheel/run.py [--data DIR] [--torch-from VENV] [--keep]

Steps: copy the checkout's files (tracked and untracked, not ignored) to a temporary folder and build the wheel there
(``pip wheel``: nothing is built inside the checkout); create a virtual environment; install torch into it (``pip
install torch==2.14.1 torchvision==0.29.1``, or with ``--torch-from VENV`` by hard-linking the torch that VENV already
has, with everything it depends on: torch preinstalled, as PyTorch's own instructions leave it, and two minutes
faster); ``pip install`` the wheel (its other dependencies resolved by pip); give the smoke test a home folder of its
own whose user data folder holds CIFAR-10 by symbolic link (``--data``, default the checkout's ``data/``, and the
decoded training split when there is one, so that 50,000 images are not decoded again); run it from an empty
folder with no location variable set. Then check that nothing in the environment (site-packages included) and
nothing in the checkout's ``data/`` changed, and that the home folder holds nothing of the course outside its user
data folder. Exit status 0 when all passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMOKE = Path(__file__).resolve().parent / "smoke.py"
TORCH = ("torch==2.14.1", "torchvision==0.29.1")  # the pair this machine keeps on disk
SOURCES = {"cifar10-jpg": "image-folder", "cifar-10-batches-py": "torchvision"}  # wf_lessons.data's two layouts
START = time.perf_counter()


def say(message: str) -> None:
    print(f"[wheel-test {time.perf_counter() - START:6.1f} s] {message}", flush=True)


def run(*cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of every file and link under ``folder`` (links not followed)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            path = Path(dirpath) / name
            st = path.lstat()
            found[path.relative_to(folder).as_posix()] = (st.st_size, st.st_mtime_ns)
    return found


def changes(before: dict, after: dict) -> list[str]:
    return ([f"added {p}" for p in sorted(after.keys() - before.keys())]
            + [f"removed {p}" for p in sorted(before.keys() - after.keys())]
            + [f"changed {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]])


def copy_checkout(target: Path) -> None:
    """The files git would commit (tracked, and untracked but not ignored) copied to ``target``."""
    listed = run("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=REPO,
                 capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def site_packages(venv: Path) -> Path:
    out = run(venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
              capture_output=True, text=True).stdout
    return Path(out.strip())


def link_torch(source_venv: Path, target_site: Path) -> list[str]:
    """Hard-link (copy where linking fails) torch and torchvision as installed in ``source_venv``, with every
    distribution they require, into ``target_site``; return the distributions' names."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip's own copy, in any environment with pip
        from pip._vendor.packaging.requirements import Requirement

    root = site_packages(source_venv).resolve()
    todo: list[tuple[str, frozenset[str]]] = [("torch", frozenset()), ("torchvision", frozenset())]
    done: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    while todo:
        name, extras = todo.pop()
        name = re.sub(r"[-_.]+", "-", name).lower()
        if (name, extras) in done:
            continue
        done.add((name, extras))
        dist = next(iter(metadata.distributions(name=name, path=[str(root)])), None)
        if dist is None:
            raise SystemExit(f"--torch-from {source_venv}: {name} is not installed there")
        for text in dist.requires or []:  # what it needs, with the extras it was asked for
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((req.name, frozenset(req.extras)))
        if dist.metadata["Name"] + " " + dist.version in names:
            continue
        names.add(dist.metadata["Name"] + " " + dist.version)
        for file in dist.files or []:
            src = Path(dist.locate_file(file)).resolve()
            if not src.is_relative_to(root) or not src.is_file():
                continue  # console scripts (bin/) are not needed here
            dst = target_site / src.relative_to(root)
            dst.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
    return sorted(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "data",
                        help="a data folder holding CIFAR-10 (default: the checkout's data/, after `make data`)")
    parser.add_argument("--torch-from", type=Path, metavar="VENV",
                        help="hard-link torch from this virtual environment instead of installing it with pip")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args(argv)

    data = args.data.resolve()
    present = [folder for folder in SOURCES if (data / folder).is_dir()]
    if not present:
        print(f"error: no CIFAR-10 in {data}: run `make data` (offline: CIFAR10_ARCHIVE=...) first", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="wf-wheel-test-")).resolve()
    if tmp.is_relative_to(REPO):
        print(f"error: the temporary folder {tmp} is inside the checkout", file=sys.stderr)
        return 2
    try:
        return _test(args, data, present[0], tmp)
    except subprocess.CalledProcessError as error:
        print(f"FAIL: {' '.join(map(str, error.cmd))} exited with status {error.returncode}", flush=True)
        return 1
    finally:
        if args.keep:
            say(f"kept {tmp}")
        else:  # tens of thousands of files: removed in the background, nothing waits for it
            subprocess.Popen(["rm", "-rf", str(tmp)], start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            say(f"removing {tmp} in the background")


def _test(args: argparse.Namespace, data: Path, source_folder: str, tmp: Path) -> int:
    say(f"building the wheel from a copy of {REPO}")
    copy_checkout(tmp / "src")
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp / "dist", tmp / "src")
    wheel = next((tmp / "dist").glob("wf_lessons-*.whl"))
    version = wheel.name.split("-")[1]
    say(f"built {wheel.name}")

    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", venv)
    py, site = venv / "bin" / "python", site_packages(venv)
    if args.torch_from is not None:
        linked = link_torch(args.torch_from.resolve(), site)
        say(f"torch linked from {args.torch_from}: {len(linked)} distributions ({', '.join(linked[:4])}, ...)")
    else:
        run(py, "-m", "pip", "install", "-qq", *TORCH)
        say(f"installed {' '.join(TORCH)}")
    run(py, "-m", "pip", "install", "-qq", wheel)
    run(py, "-m", "pip", "check")
    say(f"installed {wheel.name} into a fresh environment, {venv}")

    home, work = tmp / "home", tmp / "work"
    work.mkdir()
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WF_", "PYTHON", "XDG_", "VIRTUAL_ENV", "MPL", "TORCH", "JUPYTER"))}
    env |= {"HOME": str(home), "WF_NO_DOWNLOAD": "1", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg",
            "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}
    data_home = Path(run(py, "-c", "from wf_lessons import config; print(config.user_data_dir())", env=env,
                         cwd=work, capture_output=True, text=True).stdout.strip())
    if not data_home.is_relative_to(home):
        print(f"FAIL: the user data folder {data_home} is not in the test's home folder {home}")
        return 1
    data_home.mkdir(parents=True)
    (data_home / source_folder).symlink_to(data / source_folder)
    prepared = [source_folder]
    train_cache = data / "cache" / f"cifar10-train-{SOURCES[source_folder]}.pt"
    if train_cache.is_file():
        (data_home / "cache").mkdir()
        (data_home / "cache" / train_cache.name).symlink_to(train_cache)
        prepared.append(f"cache/{train_cache.name}")
    say(f"user data folder {data_home}: CIFAR-10 linked from {data} ({', '.join(prepared)})")

    before = {"environment": snapshot(venv), "checkout data": snapshot(REPO / "data")}
    env_smoke = env | {"WF_SMOKE_DATA_DIR": str(data_home), "WF_SMOKE_VERSION": version,
                       "WF_SMOKE_PREPARED": ":".join(prepared)}
    say(f"running {SMOKE.name} from the empty folder {work}")
    smoke = subprocess.run([py, SMOKE], cwd=work, env=env_smoke)
    where = run(py, "-m", "wf_lessons.envcheck", "where", cwd=work, env=env, capture_output=True, text=True).stdout
    print(where, end="", flush=True)
    after = {"environment": snapshot(venv), "checkout data": snapshot(REPO / "data")}

    failures = [] if smoke.returncode == 0 else [f"smoke.py exited with status {smoke.returncode}"]
    for what in before:
        diff = changes(before[what], after[what])
        if diff:
            failures.append(f"{what} ({venv if what == 'environment' else REPO / 'data'}) was written: "
                            + "; ".join(diff[:10]) + (f"; ... {len(diff) - 10} more" if len(diff) > 10 else ""))
    stray = [p for p in snapshot(home) if not (home / p).is_relative_to(data_home)
             and re.search(r"wf[-_]lessons|wf-runs|checkpoints|cifar", p, re.IGNORECASE)]
    if stray:
        failures.append(f"course files in the home folder outside the user data folder: {stray}")
    if f"run logs : {work / 'wf-runs'}" not in where or f"data folder : {data_home}" not in where:
        failures.append("`python -m wf_lessons.envcheck where` does not print the locations the smoke test found")
    if failures:
        for failure in failures:
            print(f"FAIL: {failure}", flush=True)
        return 1
    say("passed: nothing was written into the environment (site-packages included) or the checkout; "
        "run logs and checkpoints in ./wf-runs, data and cache in the user data folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())

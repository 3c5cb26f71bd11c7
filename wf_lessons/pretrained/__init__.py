"""Trained course models shipped with the package: load one in a second, without training.

Each model is two files in this folder: ``<name>.pt`` (the weights, a plain state dict) and ``<name>.json``, its
manifest: the model's name and overrides, the run log it came from (``data/runs/...``), the test accuracy that run
measured on all 10,000 CIFAR-10 test images, parameters, FLOPs, and the SHA-256 of the weights file.

``export`` replaces the pair so that an interruption at any moment leaves a model that loads: both new files are
written aside first (``.<name>.pt.new``, ``.<name>.json.new``, each atomically), then the weights and then the
manifest are renamed into place. Interrupted between the two renames, the weights are the new ones and the new
manifest waits beside them: :func:`manifest` (and so :func:`load`) takes the waiting manifest when it is the one
that matches the weights, and the next ``export`` finishes the swap.

Python::

    from wf_lessons import pretrained
    pretrained.NAMES                      # ('wf-cifar-cpu', 'wf-cifar-cpu-all-static', 'deit-cifar-cpu')
    model = pretrained.load("wf-cifar-cpu")   # eval mode, on the CPU

Command line::

    python -m wf_lessons.pretrained check      # re-evaluate every shipped model, compare with its manifest
    python -m wf_lessons.pretrained export --run train-wf-cifar-cpu-cpu-seed0 --name wf-cifar-cpu
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wf_lessons import atomic, runlog
from wf_lessons.models import build_model

FOLDER = Path(__file__).resolve().parent
#: The shipped models, in the order chapters show them.
NAMES = ("wf-cifar-cpu", "wf-cifar-cpu-all-static", "deit-cifar-cpu")
#: How far (in accuracy points) a re-evaluation may differ from the manifest: the run evaluated under its own
#: precision (bf16 autocast on the CPU that trained it); ``check`` evaluates in float32.
TOLERANCE_POINTS = 0.5

__all__ = ["NAMES", "TOLERANCE_POINTS", "check", "export", "load", "manifest", "sha256"]


def sha256(path: Path) -> str:
    """The SHA-256 of the file at ``path`` (64 hex digits), as a manifest records its weights file's."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _paths(name: str) -> tuple[Path, Path]:
    if name not in NAMES:
        raise ValueError(f"unknown pretrained model {name!r}; valid names: {', '.join(NAMES)}")
    return FOLDER / f"{name}.pt", FOLDER / f"{name}.json"


def _staged(name: str) -> tuple[Path, Path]:
    """Where ``export`` writes the new weights and manifest before renaming them into place."""
    weights, meta = _paths(name)
    return weights.with_name(f".{weights.name}.new"), meta.with_name(f".{meta.name}.new")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _waiting_manifest(name: str) -> dict[str, Any] | None:
    """The manifest an interrupted ``export`` left beside the weights it had already put in place (else None)."""
    weights, meta = _paths(name)
    waiting = _staged(name)[1]
    if not waiting.is_file() or not weights.is_file():
        return None
    staged, digest = _read_json(waiting), sha256(weights)
    current = _read_json(meta) if meta.is_file() else None
    if staged is not None and staged.get("sha256") == digest and (current or {}).get("sha256") != digest:
        return staged
    return None


def manifest(name: str) -> dict[str, Any]:
    """The manifest of a shipped model (see the module docstring); ``ValueError`` naming the file when it is not a
    readable manifest (not JSON, or without the model, its overrides, its accuracy or its SHA-256)."""
    _, meta = _paths(name)
    if (waiting := _waiting_manifest(name)) is not None:
        return _checked_manifest(waiting, _staged(name)[1])
    if not meta.is_file():
        raise FileNotFoundError(f"the manifest {meta.name} of pretrained model {name!r} is missing from {FOLDER}; "
                                "reinstall the package (pip install -e .) or restore the file from git")
    try:
        content = json.loads(meta.read_text())
    except ValueError as error:  # invalid JSON or UTF-8
        raise ValueError(f"the manifest {meta} is not valid JSON ({error}); restore it from git (git checkout -- "
                         "wf_lessons/pretrained)") from None
    return _checked_manifest(content, meta)


def _checked_manifest(content: Any, path: Path) -> dict[str, Any]:
    """``content`` if it has what loading and checking a model read, else ``ValueError`` naming ``path``."""
    restore = "restore it from git (git checkout -- wf_lessons/pretrained)"
    if not isinstance(content, dict):
        raise ValueError(f"the manifest {path} holds a {type(content).__name__}, not a manifest (a JSON object); "
                         f"{restore}")
    if missing := [key for key in _MANIFEST_KEYS if key not in content]:
        raise ValueError(f"the manifest {path} lacks {', '.join(missing)}; {restore}")
    for key, (ok, expected) in _MANIFEST_KEYS.items():
        if not ok(content[key]):
            raise ValueError(f"the manifest {path} is damaged: {key} must be {expected}, got {content[key]!r}; "
                             f"{restore}")
    return content


def _is_accuracy(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


#: What every manifest must hold (what :func:`load` and :func:`check` read): key -> (test, what is expected).
_MANIFEST_KEYS: dict[str, tuple[Any, str]] = {
    "model": (lambda v: isinstance(v, str), "a model name"),
    "model_overrides": (lambda v: isinstance(v, dict), "a dict of keyword arguments"),
    "test_acc": (_is_accuracy, "a number in [0, 1]"),
    "sha256": (lambda v: isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
               "64 hexadecimal digits"),
}


def _finish_interrupted_export(name: str) -> None:
    """Complete the swap of an interrupted ``export`` (its manifest waits beside its weights), then remove what an
    export left aside."""
    weights, meta = _paths(name)
    staged_weights, staged_meta = _staged(name)
    if _waiting_manifest(name) is not None:
        os.replace(staged_meta, meta)
        _fsync_folder(meta.parent)
    staged_weights.unlink(missing_ok=True)
    staged_meta.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (where the system allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(name: str, device: str | torch.device = "cpu", verify: bool = True) -> nn.Module:
    """The trained model ``name`` (one of :data:`NAMES`) in eval mode on ``device``.

    ``verify`` checks the weights file against the manifest's SHA-256 first (a few milliseconds), so a corrupted or
    replaced file gives a clear error instead of a silently different model.
    """
    weights, _ = _paths(name)
    meta = manifest(name)
    if not weights.is_file():
        raise FileNotFoundError(f"the weights {weights.name} of pretrained model {name!r} are missing from {FOLDER}; "
                                "restore the file from git (git checkout -- wf_lessons/pretrained)")
    if verify and sha256(weights) != meta["sha256"]:
        raise ValueError(f"{weights} is corrupted or was replaced: its SHA-256 does not match the manifest's; "
                         "restore it from git (git checkout -- wf_lessons/pretrained)")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{weights} is not a readable weights file ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        what = (f"it holds a {type(state).__name__}" if not isinstance(state, dict) else
                next(f"{k} is a {type(v).__name__}" for k, v in state.items() if not isinstance(v, torch.Tensor)))
        raise ValueError(f"{weights} is not a state dict (a dict of names to tensors): {what}; restore it from git "
                         "(git checkout -- wf_lessons/pretrained)")
    if bad := sorted(k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()):
        raise ValueError(f"{weights} holds NaN or infinite weights (in {', '.join(bad[:3])}"
                         f"{', ...' if len(bad) > 3 else ''}); restore it from git (git checkout -- "
                         "wf_lessons/pretrained)")
    try:
        model = build_model(meta["model"], **meta["model_overrides"])
    except (ValueError, TypeError) as error:
        raise ValueError(f"the manifest {_paths(name)[1]} names a model that cannot be built ({error})") from None
    from wf_lessons.train.checkpoint import load_weights

    load_weights(model, {k: v.float() for k, v in state.items()}, f"pretrained weights {weights.name}")
    return model.to(device).eval()


def export(run: str, name: str, checkpoint: str | Path | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Write ``<name>.pt`` and ``<name>.json`` from a finished training run: its log, and its checkpoint (where
    the log says, unless ``checkpoint`` is given).

    A shipped model is replaced only with ``overwrite=True``, and only by a run of the same model and overrides.
    """
    from wf_lessons.train import load_checkpoint

    weights, meta = _paths(name)
    _finish_interrupted_export(name)
    log = runlog.read(run)
    if not log.get("complete"):
        raise ValueError(f"run {run!r} is not complete: only finished runs are shipped")
    if weights.exists() or meta.exists():
        if not overwrite:
            raise FileExistsError(f"pretrained model {name!r} exists ({weights.name}); pass overwrite=True "
                                  "(--overwrite) to replace it")
        shipped = manifest(name) if meta.exists() else None  # without a manifest there is nothing to compare
        if shipped and (shipped["model"], shipped["model_overrides"]) != (log["model"], log["model_overrides"]):
            raise ValueError(f"run {run!r} trained {log['model']!r} with overrides {log['model_overrides']}, but "
                             f"{name!r} is {shipped['model']!r} with overrides {shipped['model_overrides']}")
    ckpt = load_checkpoint(checkpoint if checkpoint is not None else log["checkpoint"])
    if ckpt["epoch"] != len(log["epochs"]) or ckpt["history"] != log["epochs"]:
        raise ValueError(f"the checkpoint does not belong to run {run!r} (its history differs from the log's)")
    state = ckpt["model"]
    if ckpt.get("ema") is not None:  # the evaluated model
        state = {k.removeprefix("module."): v for k, v in ckpt["ema"].items() if k.startswith("module.")}
    staged_weights, staged_meta = _staged(name)
    atomic.torch_save({k: v.clone() for k, v in state.items()}, staged_weights)
    content = {
        "name": name,
        "model": log["model"],
        "model_overrides": log["model_overrides"],
        "run_log": f"data/runs/{log['run_name']}.json",
        "command": log["command"],
        "git_commit": log["git_commit"],
        "test_acc": log["test_acc"],
        "test_images": log["test_images"],
        "bf16_evaluation": log["bf16"],
        "parameters": log["parameters"],
        "flops_per_image": log["flops_per_image"],
        "dtype": "float32",
        "bytes": staged_weights.stat().st_size,
        "sha256": sha256(staged_weights),
    }
    with atomic.atomic_path(staged_meta) as tmp:
        tmp.write_text(json.dumps(content, indent=1) + "\n")
    # both files are complete on disk: the weights first, then the manifest (an interruption between the two
    # leaves the new manifest waiting beside the new weights, which manifest() and the next export recognise)
    os.replace(staged_weights, weights)
    os.replace(staged_meta, meta)
    _fsync_folder(FOLDER)
    return content


def check(names: tuple[str, ...] = NAMES, progress: bool = True) -> list[dict[str, Any]]:
    """Re-evaluate each model on the whole CIFAR-10 test set and compare with its manifest (hash, accuracy)."""
    from wf_lessons.data import DeviceLoader, cifar10
    from wf_lessons.train import evaluate

    images, labels = cifar10("test")
    loader = DeviceLoader(images, labels, min(500, len(labels)), train=False, device=torch.device("cpu"))
    rows = []
    for name in names:
        weights = _paths(name)[0]
        row: dict[str, Any] = {"name": name, "manifest_acc": None, "sha256_ok": False, "acc": None}
        try:  # a damaged manifest or weights file is this model's mismatch, said in its row
            meta = manifest(name)
            row["manifest_acc"] = meta["test_acc"]
            row["sha256_ok"] = sha256(weights) == meta["sha256"]
            row["acc"] = evaluate(load(name, verify=False), loader)["accuracy"]
        except (OSError, ValueError) as error:
            row["error"] = str(error)
        row["ok"] = (row["sha256_ok"] and row["acc"] is not None
                     and abs(row["acc"] - row["manifest_acc"]) * 100 <= TOLERANCE_POINTS)
        rows.append(row)
        if progress:
            print(f"  {name}: {'ok' if row['ok'] else 'MISMATCH'}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wf_lessons.pretrained", description="The shipped trained models.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="re-evaluate every shipped model on the whole test set; exit 1 on a mismatch")
    c.add_argument("names", nargs="*", help=f"models to check (default: all of {', '.join(NAMES)})")
    e = sub.add_parser("export", help="ship a finished training run as a pretrained model")
    e.add_argument("--run", required=True, help="run name (its log in data/runs/, its checkpoint)")
    e.add_argument("--name", required=True, help=f"pretrained name, one of {', '.join(NAMES)}")
    e.add_argument("--checkpoint", help="the run's checkpoint (default: where its log says)")
    e.add_argument("--overwrite", action="store_true", help="replace the shipped model (same model and overrides)")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            content = export(args.run, args.name, args.checkpoint, args.overwrite)
            print(f"{args.name}: {content['bytes']:,} bytes, test accuracy {content['test_acc']:.4f}, "
                  f"sha256 {content['sha256'][:16]}...")
            return 0
        for name in args.names:
            _paths(name)
        rows = check(tuple(args.names) or NAMES)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{'model':26s} {'manifest':>9s} {'measured':>9s} {'Δ points':>9s} {'sha256':>7s}  verdict")
    for r in rows:
        promised = f"{r['manifest_acc']:.4f}" if r["manifest_acc"] is not None else "—"
        acc = f"{r['acc']:.4f}" if r["acc"] is not None else "—"
        delta = f"{(r['acc'] - r['manifest_acc']) * 100:+.2f}" if None not in (r["acc"], r["manifest_acc"]) else "—"
        print(f"{r['name']:26s} {promised:>9s} {acc:>9s} {delta:>9s} {'ok' if r['sha256_ok'] else 'BAD':>7s}"
              f"  {'ok' if r['ok'] else 'MISMATCH: ' + r.get('error', 'accuracy or hash differs')}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

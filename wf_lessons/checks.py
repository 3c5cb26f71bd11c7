"""Argument checks shared by the package: one rule in one place, each message naming the argument and what was
expected, so that a bad value fails at once and clearly instead of deep inside PyTorch (or never).

Every check raises ``ValueError`` (a wrong type included: ``depth=2.5`` is a wrong value for an int setting) and
returns the value, so it can be used inline: ``self.depth = check_int("depth", depth)``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

__all__ = ["check_fraction", "check_int", "check_plain_name", "check_positive", "cli_int"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int = 1) -> int:
    """``value`` if it is an int ``>= low`` (bools excluded: ``True`` is not a count), else ``ValueError``."""
    if not _is_int(value) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}" + _type_note(value))
    return value


def check_positive(name: str, value: Any) -> float:
    """``value`` if it is a finite real number ``> 0``, else ``ValueError``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}" + _type_note(value))
    return value


def check_fraction(name: str, value: Any) -> float:
    """``value`` if it is a real number in ``[0, 1)`` (a probability that must leave something), else ``ValueError``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}" + _type_note(value))
    return value


def check_plain_name(name: str, value: Any) -> str:
    """``value`` if it is a plain file name (no folder, no ``..``, not hidden), else ``ValueError``.

    Used for names that become files under a fixed folder (run logs under ``data/runs/``): such a name cannot
    lead outside it.
    """
    if (
        not isinstance(value, str)
        or not value.strip()
        or value.startswith(".")
        or any(c in value for c in "/\\:\0")
    ):
        raise ValueError(f"{name} must be a plain file name (no folder, '..' or leading '.'), got {value!r}")
    return value


def _type_note(value: Any) -> str:
    return "" if _is_int(value) or isinstance(value, float) else f" (a {type(value).__name__})"


def cli_int(low: int = 1) -> Callable[[str], int]:
    """An argparse ``type`` for an int ``>= low``: ``--batch 0`` becomes a usage error, never a default."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an int >= {low}, got {value}")
        return value

    parse.__name__ = f"int >= {low}"  # argparse names the type in some messages
    return parse

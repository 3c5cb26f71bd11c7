"""What a run does when the machine cannot do what was asked: ``torch.compile`` falls back to eager mode, and a batch
that does not fit in memory is halved until one does.

Both exist because a learner's GPU is not the one the course was designed on: Triton or a C++ compiler may be
missing, the GPU may be too old for Triton, or an inductor bug may surface on the first step (:class:`CompileFallback`
then warns once, records ``"failed (<reason>)"`` and continues in eager mode); a GPU with less memory may not hold
a batch of 512 (:func:`largest_fitting_batch`, shared by :mod:`wf_lessons.train` and :mod:`wf_lessons.headline`).
"""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = [
    "TRITON_MIN_CAPABILITY",
    "BatchTooLarge",
    "CompileFallback",
    "compile_unsupported",
    "free_memory",
    "is_out_of_memory",
    "largest_fitting_batch",
]

T = TypeVar("T")

#: The oldest CUDA compute capability Triton (torch.compile's GPU code generator) supports: Volta (V100, 7.0).
TRITON_MIN_CAPABILITY = (7, 0)


# ------------------------------------------------------------------------------------------------ compile
def compile_unsupported(device: torch.device) -> str | None:
    """Why ``torch.compile`` cannot work on ``device``, known before trying (None: nothing known against it)."""
    if device.type == "cuda":
        capability = tuple(torch.cuda.get_device_capability(device))
        if capability < TRITON_MIN_CAPABILITY:
            return (f"{torch.cuda.get_device_name(device)} has compute capability {capability[0]}.{capability[1]}; "
                    f"Triton needs {TRITON_MIN_CAPABILITY[0]}.{TRITON_MIN_CAPABILITY[1]} or newer")
    return None


def _short(error: BaseException) -> str:
    """``ErrorType: first line of the message`` (at most 200 characters)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class CompileFallback:
    """A model run through ``torch.compile`` when asked, and in eager mode when compiling it fails.

    ``compiled.run(fn)`` calls ``fn(module)`` with the compiled module (or the eager one). ``torch.compile`` is lazy:
    it compiles on the first call, so that is where a missing compiler or an inductor error surfaces. When ``fn``
    raises there (anything but running out of memory), the random state is put back as it was before the call,
    ``fn`` is run again with the eager module, and if that works the failure is the compiler's: one warning, and
    :attr:`status` becomes ``"failed (<reason>)"``; every later call is eager. An error that eager mode raises too is
    not the compiler's and propagates unchanged. ``fn`` must not have changed anything before it raised (a training
    step raises in its forward or backward pass, before the optimizer steps).

    :attr:`status`: ``"off"`` (not asked), ``"on"`` or ``"failed (<reason>)"``, as the run log records it.
    """

    def __init__(self, model: nn.Module, enabled: bool, device: torch.device | None = None,
                 say: Callable[[str], Any] | None = None) -> None:
        self.eager = model
        self.module: nn.Module = model
        self.status = "off"
        self._say = say
        self._first = enabled
        if enabled:
            reason = compile_unsupported(device) if device is not None else None
            if reason is not None:
                self._fail(reason)
            else:
                self.module = torch.compile(model)
                self.status = "on"

    def _fail(self, reason: str) -> None:
        self.module, self.status, self._first = self.eager, f"failed ({reason})", False
        message = f"torch.compile failed ({reason}); continuing in eager mode"
        warnings.warn(message, RuntimeWarning, stacklevel=3)
        if self._say is not None:
            self._say(message)

    def run(self, fn: Callable[[nn.Module], T]) -> T:
        """``fn(module)``, falling back to eager mode when the first compiled call fails (see the class)."""
        if not self._first:
            return fn(self.module)
        cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
        state = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if cuda else None)
        try:
            out = fn(self.module)
        except Exception as error:  # a compiler failure: RuntimeError, BackendCompilerFailed, ImportError, ...
            if is_out_of_memory(error):
                raise
            failure = _short(error)
        else:
            self._first = False
            return out
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state_all(state[1])
        # the random state is back as before the failed call: eager mode draws what an eager run would
        out = fn(self.eager)
        self._fail(failure)
        return out


# --------------------------------------------------------------------------------------------- memory
class BatchTooLarge(RuntimeError):
    """Even the smallest batch tried does not fit in memory."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is the device running out of memory (CUDA's ``OutOfMemoryError``, or a CPU allocation
    that failed)."""
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and ("out of memory" in text or "DefaultCPUAllocator: can't allocate"
                                                in text or "not enough memory" in text)


def free_memory() -> None:
    """Release what a failed step left behind: Python's garbage, then CUDA's cached blocks."""
    gc.collect()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def largest_fitting_batch(try_batch: Callable[[int], T], batch: int, min_batch: int = 1,
                          say: Callable[[str], Any] = print) -> tuple[int, T]:
    """``(b, try_batch(b))`` for the largest ``b`` among ``batch, batch // 2, batch // 4, ...`` (down to
    ``min_batch``) for which ``try_batch`` does not run out of memory.

    Other errors propagate. Raises :class:`BatchTooLarge` when not even ``min_batch`` fits (or the next halving would
    go below it), saying which batches were tried.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < max(1, min_batch):
        raise ValueError(f"batch must be an int >= min_batch ({min_batch}), got {batch!r}")
    tried = []
    while True:
        oom = False
        try:
            return batch, try_batch(batch)
        except Exception as error:
            if not is_out_of_memory(error):
                raise
            oom = True
        if oom:  # outside the except block: the failed attempt's tensors are unreferenced now
            free_memory()
            tried.append(batch)
            if batch // 2 < min_batch:
                raise BatchTooLarge(f"out of memory at every batch tried ({', '.join(map(str, tried))}); the smallest "
                                    f"allowed is {min_batch}")
            say(f"batch {batch} does not fit in memory: trying {batch // 2}")
            batch //= 2

"""Dynamic linear layers: a linear layer ``C -> D`` whose weight is partly predicted from the input.

Every layer here computes, for tokens ``x`` of shape ``(B, N, C)`` lying on an ``H×W`` grid (row-major),

    Y = X · (W0 + Ŵ) + b,      Ŵ = D(X) / (‖D(X)‖ + 1)   (norm over C: one per output column)

with a static weight ``W0`` (C×D), a bias ``b`` (D) and a predicted part ``D(X)`` (B×C×D), one matrix per image.
The normalisation keeps each column's direction and maps its norm r to r/(r+1) < 1 (chapters/paper_notes.md,
"The shared template").

The predictors form one ladder over the same two-branch generator (chapters/paper_notes.md,
"What the course reconstructs")::

    P       = AvgPool2d(2)(X on its grid)                        (B, N', C), N' = (H//2)·(W//2)  (floors)
    U_k, U_v = split(P·A + a, [C/r, D/r])                        one nn.Linear C -> C/r + D/r, with bias
    K       = f(U_k)·W1,  V = g(U_v)·W2                          keys (B, N', C), values (B, N', D)
    D(X)    = Kᵀ·V · C^-0.5 / N                                 N is the FULL token count, not N'

- ``static``: no prediction, ``W = W0`` — exactly an ``nn.Linear`` (state-dict keys ``weight`` (D×C), ``bias``).
- ``gap``: the generator fed the global average token in place of every pooled token (a rank-1 prediction).
- ``linear``: no activation on either branch, ``f = g = identity``.
- ``nonlinear``: SiLU on the value branch only (one-sided).
- ``bilateral``: SiLU on both branches — the paper's released layer (reference class ``DynLinear``), exactly.
- ``deep``: each branch one hidden layer deeper (Linear -> SiLU -> Linear -> SiLU -> W).

``bilateral`` is the reference code; ``gap``, ``linear``, ``nonlinear`` and ``deep`` are the course's reconstruction
of strategies the paper only names. Widths floor like the reference: C/r means ``in_features // rate``.

Use: ``layer = build_dynamic_linear(C, D, predictor="bilateral")`` (or the class directly,
``BilateralDynLinear(C, D)``); ``layer(x, hw)`` ``(B, N, C) -> (B, N, D)``;
``layer.predicted_weight(x, hw)`` gives the per-sample weight ``W0 + Ŵ`` ``(B, C, D)``, ``layer.dynamic_weight``
the normalised prediction ``Ŵ`` alone (``None`` for ``static``). Predictors that pool need a grid of at least 2×2.

Two switches serve chapter 08's controls: ``layer.predicting = False`` forces ``Ŵ`` to zero in the forward pass
(the layer computes ``X·W0 + b``, its predictor unused), and ``layer.zero_init_prediction()`` makes ``Ŵ`` exactly
zero at the start while it still learns (the value branch ``W2`` is zeroed, so the gradient reaches it).

State-dict keys (the official layout of a dynamic ``linear1``, chapters/paper_notes.md,
"Checkpoint layout"): ``w`` (C×D, used as ``x @ w``),
``b`` (D), ``wfm.weight`` ((C/r + D/r)×C), ``wfm.bias``, ``w1`` ((C/r)×C), ``w2`` ((D/r)×D); ``deep`` adds
``hidden1.{weight,bias}`` ((C/r)×(C/r)) and ``hidden2.{weight,bias}`` ((D/r)×(D/r)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wf_lessons.checks import check_int

__all__ = [
    "LINEAR_PREDICTORS",
    "BilateralDynLinear",
    "DeepDynLinear",
    "DynamicLinear",
    "GapDynLinear",
    "LinearDynLinear",
    "NonlinearDynLinear",
    "StaticLinear",
    "build_dynamic_linear",
    "column_norms",
    "grid_size",
    "parameter_count",
]

INIT_STD = 0.02  # trunc-normal std of every weight and of the static bias (reference code)


def build_dynamic_linear(in_features: int, out_features: int, predictor: str = "bilateral",
                         rate: int = 4) -> DynamicLinear:
    """A dynamic linear layer ``(B, N, in_features) -> (B, N, out_features)`` with the predictor named ``predictor``
    (a key of :data:`LINEAR_PREDICTORS`): ``LINEAR_PREDICTORS[predictor](in_features, out_features, rate=rate)``.

    Raises ``ValueError`` for an unknown name, listing the valid ones (``TypeError`` for a name that is not a str).
    """
    return _predictor_class(predictor)(in_features, out_features, rate=rate)


def _predictor_class(name: object) -> type[DynamicLinear]:
    if not isinstance(name, str):
        raise TypeError(f"predictor must be a str, one of {list(LINEAR_PREDICTORS)}; got {type(name).__name__}")
    if name not in LINEAR_PREDICTORS:
        raise ValueError(f"unknown predictor {name!r}: valid predictors are {list(LINEAR_PREDICTORS)}")
    return LINEAR_PREDICTORS[name]


def grid_size(n_tokens: int, hw: Sequence[int] | None = None) -> tuple[int, int]:
    """The token grid ``(H, W)`` of ``n_tokens`` tokens: ``hw`` checked against N, or ``(√N, √N)`` for a square N.

    Raises ``ValueError`` when N is not a positive int, when N is not a perfect square and no ``hw`` is given, or when
    ``H·W != N``.
    """
    check_int("n_tokens", n_tokens)
    if hw is None:
        side = math.isqrt(n_tokens)
        if side * side != n_tokens:
            raise ValueError(
                f"{n_tokens} tokens do not form a square grid: pass hw=(H, W) with H·W = {n_tokens}"
            )
        return side, side
    if (
        isinstance(hw, (str, bytes))
        or not isinstance(hw, Sequence)
        or len(hw) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in hw)
    ):
        raise ValueError(f"hw must be a pair of positive ints (H, W), got {hw!r}")
    h, w = hw
    if h * w != n_tokens:
        raise ValueError(f"hw={tuple(hw)} gives {h * w} grid positions, but x has N={n_tokens} tokens")
    return h, w


def _identity(t: Tensor) -> Tensor:
    return t


def column_norms(weight: Tensor) -> Tensor:
    """Norm of every output column of per-sample weights ``(B, C, D)`` -> ``(B, D)`` (the norm runs over C)."""
    return weight.norm(dim=-2)


class DynamicLinear(nn.Module):
    """A linear layer ``in_features -> out_features`` on tokens ``(B, N, C)`` whose weight may depend on the input.

    The base class of every predictor: build a layer with its class, e.g. ``BilateralDynLinear(C, D, rate=4)``, or by
    name with :func:`build_dynamic_linear` (``build_dynamic_linear(C, D, predictor="bilateral")``); every predictor
    class is a subclass (so ``isinstance(layer, DynamicLinear)`` holds). ``rate`` is the bottleneck reduction r of the
    generator (widths C//r, D//r).

    ``forward(x, hw=None)``: ``x`` ``(B, N, C)`` tokens on an ``H×W`` grid (row-major) -> ``(B, N, D)``. ``hw`` is
    inferred only for a perfect-square N; otherwise pass it. Odd sides work: the 2×2 pooling floors.

    Range: a prediction is a second moment of the input (``Kᵀ·V``), so finite inputs far beyond any activation
    (about 1e22 at initialisation; 1e30 always) overflow float32 and bfloat16, and the output is NaN without a
    word. The values are not checked on purpose: a check costs a device synchronisation per layer and step. Inside
    WeightFormer the layer sees LayerNorm outputs, and training stops a run whose loss is not finite.
    """

    predictor: ClassVar[str] = ""

    def __init__(self, in_features: int, out_features: int, rate: int = 4) -> None:
        super().__init__()
        if type(self) is DynamicLinear:
            raise TypeError("DynamicLinear is the base class of the predictors: build a layer by name with "
                            "build_dynamic_linear(in_features, out_features, predictor='bilateral'), or with a "
                            f"predictor's class, e.g. BilateralDynLinear(in_features, out_features); predictors: "
                            f"{list(LINEAR_PREDICTORS)}")
        for name, value in (("in_features", in_features), ("out_features", out_features), ("rate", rate)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if in_features // rate < 1 or out_features // rate < 1:
            raise ValueError(
                f"rate={rate} leaves no bottleneck width: in_features // rate = {in_features // rate}, "
                f"out_features // rate = {out_features // rate} (both must be >= 1)"
            )
        self.in_features, self.out_features, self.rate = in_features, out_features, rate
        #: False forces the prediction to zero in the forward pass: ``Y = X·W0 + b`` (chapter 08's control)
        self.predicting = True

    # ------------------------------------------------------------------------------------------- interface
    def static_weight(self) -> Tensor:
        """The static weight ``W0`` as ``(C, D)`` (input × output, used as ``x @ W0``)."""
        raise NotImplementedError

    def static_bias(self) -> Tensor:
        """The bias ``b``, ``(D,)``."""
        raise NotImplementedError

    def dynamic_weight(self, x: Tensor, hw: Sequence[int] | None = None) -> Tensor | None:
        """The normalised predicted part ``Ŵ`` ``(B, C, D)`` for tokens ``x`` ``(B, N, C)``; ``None`` for static."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------- shared
    def _check(self, x: Tensor, hw: Sequence[int] | None) -> tuple[int, int]:
        """Validate ``x`` ``(B, N, C)`` and return its grid ``(H, W)``."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor of shape (B, N, C), got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(f"x must be tokens of shape (B, N, C), got a {x.dim()}-D tensor {tuple(x.shape)}")
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"x has {x.shape[-1]} channels, but this layer expects in_features={self.in_features}"
            )
        return grid_size(x.shape[1], hw)

    def predicted_weight(self, x: Tensor, hw: Sequence[int] | None = None) -> Tensor:
        """The weight each sample is multiplied by, ``W0 + Ŵ``: ``(B, N, C)`` -> ``(B, C, D)``."""
        self._check(x, hw)
        dynamic = self.dynamic_weight(x, hw) if self.predicting else None
        static = self.static_weight()
        if dynamic is None:
            return static.expand(x.shape[0], *static.shape)  # (C, D) -> (B, C, D), a view
        return static + dynamic

    def forward(self, x: Tensor, hw: Sequence[int] | None = None) -> Tensor:
        """``(B, N, C)`` -> ``(B, N, D)``: ``Y = X·(W0 + Ŵ) + b`` with one weight matrix per sample."""
        if not self.predicting:
            self._check(x, hw)
            return x @ self.static_weight() + self.static_bias()  # one shared weight
        return x @ self.predicted_weight(x, hw) + self.static_bias()

    def zero_init_prediction(self) -> None:
        """Make the prediction ``Ŵ`` exactly zero for every input while it can still learn (chapter 08)."""
        raise ValueError(f"the {self.predictor!r} layer predicts nothing: there is no prediction to zero")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rate={self.rate}"


class StaticLinear(DynamicLinear):
    """``static``: ``W = W0``, no prediction — an ``nn.Linear`` with the same state-dict keys and layout.

    Parameters ``weight`` ``(D, C)`` (output × input, as ``nn.Linear``) and ``bias`` ``(D,)``; init trunc-normal
    std 0.02 and zero bias (the reference's init of every ``nn.Linear``). ``rate`` is accepted and unused.
    """

    predictor = "static"

    def __init__(self, in_features: int, out_features: int, rate: int = 4) -> None:
        super().__init__(in_features, out_features, rate)
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        nn.init.trunc_normal_(self.weight, std=INIT_STD)

    def static_weight(self) -> Tensor:
        return self.weight.t()  # (D, C) -> (C, D)

    def static_bias(self) -> Tensor:
        return self.bias

    def dynamic_weight(self, x: Tensor, hw: Sequence[int] | None = None) -> None:
        self._check(x, hw)
        return None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def forward(self, x: Tensor, hw: Sequence[int] | None = None) -> Tensor:
        self._check(x, hw)
        return F.linear(x, self.weight, self.bias)  # one shared weight: no per-sample matrices needed


class _TwoBranchDynLinear(DynamicLinear):
    """The shared generator of every predicting rung: fused bottleneck Linear, key and value branches.

    Subclasses choose the branch activations (``key_act``, ``value_act``) and may change the pooled tokens.
    """

    key_act: ClassVar[Callable[[Tensor], Tensor]] = staticmethod(F.silu)
    value_act: ClassVar[Callable[[Tensor], Tensor]] = staticmethod(F.silu)

    def __init__(self, in_features: int, out_features: int, rate: int = 4) -> None:
        super().__init__(in_features, out_features, rate)
        c, d = in_features // rate, out_features // rate
        self.scale = in_features**-0.5
        self.w = nn.Parameter(torch.empty(in_features, out_features))  # W0, (C, D): used as x @ w
        self.b = nn.Parameter(torch.empty(out_features))
        self.wfm = nn.Linear(in_features, c + d)  # fused bottleneck A, a: C -> C/r + D/r
        self.w1 = nn.Parameter(torch.empty(c, in_features))  # (C/r, C)
        self.w2 = nn.Parameter(torch.empty(d, out_features))  # (D/r, D)
        for p in (self.w, self.b, self.w1, self.w2, self.wfm.weight):
            nn.init.trunc_normal_(p, std=INIT_STD)
        nn.init.zeros_(self.wfm.bias)

    def static_weight(self) -> Tensor:
        return self.w

    def static_bias(self) -> Tensor:
        return self.b

    def pooled_tokens(self, x: Tensor, hw: Sequence[int] | None = None) -> Tensor:
        """2×2 average pooling on the token grid (floors odd sides): ``(B, N, C)`` -> ``(B, N', C)``."""
        h, w = self._check(x, hw)
        if h < 2 or w < 2:
            raise ValueError(f"the 2×2 pooling needs a grid of at least 2×2 tokens, got {h}×{w}")
        b, n, c = x.shape
        grid = x.transpose(1, 2).reshape(b, c, h, w)  # (B, N, C) -> (B, C, H, W)
        return F.avg_pool2d(grid, 2).flatten(2).transpose(1, 2)  # (B, C, H//2, W//2) -> (B, N', C)

    def branches(self, p: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values from pooled tokens ``p`` ``(B, M, C)``: ``(B, M, C)`` and ``(B, M, D)``."""
        u, v = torch.split(self.wfm(p), [self.w1.shape[0], self.w2.shape[0]], dim=-1)  # (B, M, C/r), (B, M, D/r)
        return self.key_act(u) @ self.w1, self.value_act(v) @ self.w2

    def keys_values(self, x: Tensor, hw: Sequence[int] | None = None) -> tuple[Tensor, Tensor]:
        """The generator's keys ``(B, N', C)`` and values ``(B, N', D)`` for tokens ``x`` ``(B, N, C)``."""
        return self.branches(self.pooled_tokens(x, hw))

    def raw_dynamic_weight(self, x: Tensor, hw: Sequence[int] | None = None) -> Tensor:
        """The prediction before normalisation, ``Kᵀ·V · C^-0.5 / N``: ``(B, N, C)`` -> ``(B, C, D)``."""
        k, v = self.keys_values(x, hw)
        return k.transpose(-2, -1) @ v * self.scale / x.shape[1]

    def dynamic_weight(self, x: Tensor, hw: Sequence[int] | None = None) -> Tensor:
        w = self.raw_dynamic_weight(x, hw)
        return w / (w.norm(dim=-2, keepdim=True) + 1.0)  # per output column: norm r -> r / (r + 1)

    def zero_init_prediction(self) -> None:
        """Zero the value projection ``W2``: values, ``Kᵀ·V`` and ``Ŵ`` are then zero for every input, and the
        gradient of ``W2`` (through the non-zero keys) is not. Zeroing both branches would leave no gradient."""
        with torch.no_grad():
            self.w2.zero_()


class GapDynLinear(_TwoBranchDynLinear):
    """``gap`` (the course's reconstruction): the bilateral generator with every pooled token replaced by the
    global average token ``x̄`` of all N tokens, so ``D(X) = N'·k(x̄)ᵀ v(x̄) · C^-0.5 / N`` — rank 1.

    Same parameters and state-dict keys as ``bilateral``; the generator runs on one token (cost O(C·D), not O(N)).
    The factor N' (instead of feeding the generator one token with N' = 1) keeps the prediction as large as
    ``bilateral``'s on an image whose pooled tokens are all equal, so the ladder compares ideas, not scales.
    """

    predictor = "gap"

    def raw_dynamic_weight(self, x: Tensor, hw: Sequence[int] | None = None) -> Tensor:
        h, w = self._check(x, hw)
        if h < 2 or w < 2:
            raise ValueError(f"the 2×2 pooling needs a grid of at least 2×2 tokens, got {h}×{w}")
        n_pooled = (h // 2) * (w // 2)
        k, v = self.branches(x.mean(dim=1, keepdim=True))  # (B, 1, C), (B, 1, D)
        return k.transpose(-2, -1) @ v * (n_pooled * self.scale / x.shape[1])  # outer product, (B, C, D)


class LinearDynLinear(_TwoBranchDynLinear):
    """``linear`` (the course's reconstruction): both branches linear, ``K = U_k·W1``, ``V = U_v·W2``.

    The prediction is then a quadratic function of the pooled tokens (a projected second moment).
    """

    predictor = "linear"
    key_act = staticmethod(_identity)
    value_act = staticmethod(_identity)


class NonlinearDynLinear(_TwoBranchDynLinear):
    """``nonlinear`` (the course's reconstruction): SiLU on the value branch only, ``K = U_k·W1``,
    ``V = SiLU(U_v)·W2``."""

    predictor = "nonlinear"
    key_act = staticmethod(_identity)


class BilateralDynLinear(_TwoBranchDynLinear):
    """``bilateral``: SiLU on both branches — the paper's released layer (reference ``DynLinear``), exactly.

    Parameters 9.5·C² + 5.25·C at D = 4C, r = 4 (351,216 at C = 192).
    """

    predictor = "bilateral"


class DeepDynLinear(_TwoBranchDynLinear):
    """``deep`` (the course's reconstruction): each branch one hidden layer deeper,
    ``K = SiLU(hidden1(SiLU(U_k)))·W1`` and ``V = SiLU(hidden2(SiLU(U_v)))·W2``.

    Adds ``hidden1`` (nn.Linear C/r -> C/r) and ``hidden2`` (nn.Linear D/r -> D/r), trunc-normal 0.02, zero bias.
    """

    predictor = "deep"

    def __init__(self, in_features: int, out_features: int, rate: int = 4) -> None:
        super().__init__(in_features, out_features, rate)
        c, d = self.w1.shape[0], self.w2.shape[0]
        self.hidden1 = nn.Linear(c, c)
        self.hidden2 = nn.Linear(d, d)
        for layer in (self.hidden1, self.hidden2):
            nn.init.trunc_normal_(layer.weight, std=INIT_STD)
            nn.init.zeros_(layer.bias)

    def branches(self, p: Tensor) -> tuple[Tensor, Tensor]:
        u, v = torch.split(self.wfm(p), [self.w1.shape[0], self.w2.shape[0]], dim=-1)  # (B, M, C/r), (B, M, D/r)
        k = F.silu(self.hidden1(F.silu(u))) @ self.w1  # (B, M, C)
        v = F.silu(self.hidden2(F.silu(v))) @ self.w2  # (B, M, D)
        return k, v


#: Predictor name -> layer class, in the order of the chapter's ladder.
LINEAR_PREDICTORS: dict[str, type[DynamicLinear]] = {
    cls.predictor: cls
    for cls in (StaticLinear, GapDynLinear, LinearDynLinear, NonlinearDynLinear, BilateralDynLinear, DeepDynLinear)
}


def parameter_count(predictor: str, in_features: int, out_features: int, rate: int = 4) -> int:
    """Parameters of ``build_dynamic_linear(in_features, out_features, predictor, rate)``, from the formula.

    static: C·D + D. gap, linear, nonlinear, bilateral: C·D + D + (C + 1)(c + d) + c·C + d·D with c = C//r,
    d = D//r. deep: that plus c² + c + d² + d. (At D = 4C, r = 4, bilateral has 9.5·C² + 5.25·C.)
    """
    _predictor_class(predictor)
    for name, value in (("in_features", in_features), ("out_features", out_features), ("rate", rate)):
        check_int(name, value)
    big_c, big_d, c, d = in_features, out_features, in_features // rate, out_features // rate
    static = big_c * big_d + big_d
    if predictor == "static":
        return static
    two_branch = static + (big_c + 1) * (c + d) + c * big_c + d * big_d
    return two_branch + (c * c + c + d * d + d if predictor == "deep" else 0)

"""Softmax attention read as a two-layer MLP whose weights are predicted from the input (chapters/paper_notes.md).

For one head, with queries ``Q`` (N×d), keys ``K`` (M×d) and values ``V`` (M×d_v)::

    O = softmax(Q Kᵀ / √d) V                 # the attention formula
    o_i = act(q_i W1) W2                     # the same thing, row by row: a two-layer MLP applied to q_i
    W1 = Kᵀ / √d   (d×M),   W2 = V   (M×d_v),   act = softmax over the M hidden units

The weights ``{W1, W2} = G(X)`` are *predicted* from the sequence; the MLP has one hidden unit per token, so
it costs O(N·M·d). A transformer FFN is the same MLP with static weights, and linear attention is a dynamic
*linear* layer whose d×d_v weight ``φ(K)ᵀV`` is predicted from the sequence.

Shapes: every function accepts any leading batch dimensions, e.g. ``(N, d)``, ``(B, N, d)`` or multi-head
``(B, h, N, d)``; ``q``, ``k`` and ``v`` must share them.

Mask convention (as the boolean ``attn_mask`` of ``torch.nn.functional.scaled_dot_product_attention``): a
boolean tensor broadcastable to ``(..., N, M)`` where **True means keep** (query i may use key j) and False
switches the pair off. In the MLP reading, a mask switches hidden units off. A query whose every key is masked
gets an all-zero output (an MLP whose hidden units are all off outputs zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "FEATURE_MAPS",
    "attention_as_mlp",
    "attention_matrix",
    "ffn_as_attention",
    "ffn_keys_values",
    "linear_attention",
    "linear_attention_quadratic",
    "linear_attention_weight",
    "masked_softmax",
    "predicted_weights",
    "softmax_attention",
    "two_layer_mlp",
]


# ----------------------------------------------------------------------------------------------- input checks
def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., tokens, features), got shape {tuple(t.shape)}")
    if not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(
            "q, k and v must share their leading (batch, head) dimensions, got "
            f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same feature size d, got q {tuple(q.shape)}, k {tuple(k.shape)}"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of tokens M, got k {tuple(k.shape)}, v {tuple(v.shape)}"
        )


def _check_mask(mask: Tensor | None, scores_shape: torch.Size) -> None:
    if mask is None:
        return
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise TypeError(f"mask must be a boolean tensor (True = keep), got {got}")
    try:
        shape = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError as err:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
            f"{tuple(scores_shape)} (..., N queries, M keys)"
        ) from err
    if shape != scores_shape:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} would enlarge the scores' shape {tuple(scores_shape)}"
        )


# ----------------------------------------------------------------------------------------- softmax attention
def masked_softmax(scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """Softmax over the last dimension, with ``mask`` (bool, True = keep) switching entries off.

    ``scores``: ``(..., N, M)``. Rows with no kept entry come out as all zeros (never NaN).
    """
    _check_mask(mask, scores.shape)
    if mask is None:
        return scores.softmax(dim=-1)
    any_kept = mask.any(dim=-1, keepdim=True)  # (..., N, 1)
    scores = scores.masked_fill(~mask, float("-inf")).masked_fill(~any_kept, 0.0)
    return scores.softmax(dim=-1).masked_fill(~any_kept, 0.0)


def attention_matrix(q: Tensor, k: Tensor, mask: Tensor | None = None) -> Tensor:
    """The N×M attention weights ``softmax(Q Kᵀ / √d)``.

    ``q`` (..., N, d), ``k`` (..., M, d), ``mask`` bool (True = keep) -> (..., N, M).
    """
    _check_qkv(q, k, k)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., N, M)
    return masked_softmax(scores, mask)


def softmax_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """Softmax attention computed explicitly through its N×M weight matrix.

    ``q`` (..., N, d), ``k`` (..., M, d), ``v`` (..., M, d_v), ``mask`` bool broadcastable to (..., N, M),
    True = keep. Returns (..., N, d_v), equal to ``scaled_dot_product_attention(q, k, v, attn_mask=mask)``.
    """
    _check_qkv(q, k, v)
    return attention_matrix(q, k, mask) @ v  # (..., N, M) @ (..., M, d_v)


# ------------------------------------------------------------------------------------------ the MLP reading
def two_layer_mlp(
    x: Tensor,
    w1: Tensor,
    w2: Tensor,
    activation: Callable[[Tensor], Tensor],
    b1: Tensor | None = None,
    b2: Tensor | None = None,
) -> Tensor:
    """``activation(x W1 + b1) W2 + b2``, applied to every row of ``x`` independently.

    ``x`` (..., N, d_in), ``w1`` (..., d_in, H), ``w2`` (..., H, d_out) -> (..., N, d_out).
    ``activation`` sees the hidden pre-activations ``(..., N, H)``; it may act element-wise (GELU) or across the
    H hidden units of a row (softmax). Weights with leading dimensions are per-sample (predicted) weights; 2-D
    weights are shared by all rows and samples.
    """
    if w1.shape[-2] != x.shape[-1] or w2.shape[-2] != w1.shape[-1]:
        raise ValueError(
            f"weights do not chain: x {tuple(x.shape)} needs w1 (d_in={x.shape[-1]}, H) and w2 (H, d_out), "
            f"got w1 {tuple(w1.shape)}, w2 {tuple(w2.shape)}"
        )
    hidden = x @ w1  # (..., N, H): one pre-activation per hidden unit
    if b1 is not None:
        hidden = hidden + b1
    out = activation(hidden) @ w2  # (..., N, d_out)
    return out if b2 is None else out + b2


def predicted_weights(k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """The MLP weights that attention predicts from the sequence: ``W1 = Kᵀ/√d`` and ``W2 = V``.

    ``k`` (..., M, d), ``v`` (..., M, d_v) -> ``W1`` (..., d, M), ``W2`` (..., M, d_v): one pair per batch
    element and head. The hidden width is M, the number of tokens.
    """
    _check_qkv(k, k, v)
    return k.transpose(-2, -1) / math.sqrt(k.shape[-1]), v


def attention_as_mlp(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """Softmax attention computed as a two-layer MLP applied to each query row, with predicted weights.

    ``o_i = softmax(q_i W1) W2`` with ``W1 = Kᵀ/√d`` (d×M), ``W2 = V`` (M×d_v); the softmax runs over the M
    hidden units and ``mask`` (bool, True = keep, broadcastable to (..., N, M)) switches hidden units off per
    query. ``q`` (..., N, d), ``k`` (..., M, d), ``v`` (..., M, d_v) -> (..., N, d_v).
    """
    _check_qkv(q, k, v)
    w1, w2 = predicted_weights(k, v)
    return two_layer_mlp(q, w1, w2, activation=lambda hidden: masked_softmax(hidden, mask))


# --------------------------------------------------------------------------------- the FFN: static weights
def ffn_keys_values(fc1: nn.Linear, fc2: nn.Linear) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Read the two layers of a transformer FFN as learned keys and values.

    ``fc1``: C -> H, ``fc2``: H -> C_out. Returns ``keys`` (H, C) (row j of ``fc1.weight`` is the key of
    hidden unit j), ``values`` (H, C_out) (row j of ``fc2.weight.T``), and the two biases (or None).
    """
    if not (isinstance(fc1, nn.Linear) and isinstance(fc2, nn.Linear)):
        raise TypeError(f"fc1 and fc2 must be nn.Linear, got {type(fc1).__name__} and {type(fc2).__name__}")
    if fc1.out_features != fc2.in_features:
        raise ValueError(
            f"fc1's output width {fc1.out_features} must equal fc2's input width {fc2.in_features}"
        )
    return fc1.weight, fc2.weight.t(), fc1.bias, fc2.bias


def ffn_as_attention(
    x: Tensor, fc1: nn.Linear, fc2: nn.Linear, activation: Callable[[Tensor], Tensor] = F.gelu
) -> Tensor:
    """A transformer FFN ``fc2(GELU(fc1(x)))`` read as attention over learned, input-independent keys/values.

    ``x`` (..., N, C) -> (..., N, C_out): ``activation(x Kᵀ + b1) V + b2`` with ``K = fc1.weight`` (H, C)
    and ``V = fc2.weight.T`` (H, C_out). The same two-layer MLP as :func:`attention_as_mlp`, but with H hidden
    units fixed by the model (not by N), static weights and GELU instead of softmax.
    """
    keys, values, key_bias, value_bias = ffn_keys_values(fc1, fc2)
    if x.shape[-1] != keys.shape[-1]:
        raise ValueError(
            f"x must have {keys.shape[-1]} features (fc1.in_features), got shape {tuple(x.shape)}"
        )
    return two_layer_mlp(x, keys.t(), values, activation=activation, b1=key_bias, b2=value_bias)


# ---------------------------------------------------------------------------------------- linear attention
FEATURE_MAPS: dict[str, Callable[[Tensor], Tensor]] = {
    "elu": lambda t: F.elu(t) + 1.0,  # Katharopoulos et al. (2020): positive, smooth
    "relu": F.relu,
    "identity": lambda t: t,
}


def _feature_map(feature_map: str | Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    if callable(feature_map):
        return feature_map
    if feature_map not in FEATURE_MAPS:
        raise ValueError(
            f"unknown feature map {feature_map!r}: use a callable or one of {sorted(FEATURE_MAPS)}"
        )
    return FEATURE_MAPS[feature_map]


def linear_attention_weight(
    k: Tensor, v: Tensor, feature_map: str | Callable[[Tensor], Tensor] = "elu"
) -> tuple[Tensor, Tensor]:
    """The weight that linear attention predicts from the sequence, and its normaliser.

    ``k`` (..., M, d), ``v`` (..., M, d_v) -> ``W = φ(K)ᵀ V`` (..., d, d_v) and ``z = φ(K)ᵀ 1`` (..., d).
    Both have a size independent of the number of tokens M.
    """
    _check_qkv(k, k, v)
    phi_k = _feature_map(feature_map)(k)
    return phi_k.transpose(-2, -1) @ v, phi_k.sum(dim=-2)  # (..., d, d_v), (..., d)


def linear_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    feature_map: str | Callable[[Tensor], Tensor] = "elu",
    normalize: bool = True,
) -> Tensor:
    """Linear attention as a dynamic linear layer: ``φ(Q) W``, ``W = φ(K)ᵀ V`` predicted from the sequence.

    ``q`` (..., N, d), ``k`` (..., M, d), ``v`` (..., M, d_v) -> (..., N, d_v). Cost O((N + M)·d·d_v): linear
    in the number of tokens. With ``normalize`` each output row is divided by ``φ(q_i)·z``, ``z = Σ_j φ(k_j)``
    (the row sums of the quadratic form), which needs a positive feature map such as ``"elu"`` (elu + 1).
    ``feature_map``: a callable or one of :data:`FEATURE_MAPS`.
    """
    _check_qkv(q, k, v)
    phi = _feature_map(feature_map)
    weight, z = linear_attention_weight(k, v, phi)
    phi_q = phi(q)
    out = phi_q @ weight  # (..., N, d) @ (..., d, d_v): one predicted d×d_v linear layer per sequence
    if normalize:
        out = out / (phi_q @ z.unsqueeze(-1))  # (..., N, 1)
    return out


def linear_attention_quadratic(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    feature_map: str | Callable[[Tensor], Tensor] = "elu",
    normalize: bool = True,
) -> Tensor:
    """The same result as :func:`linear_attention`, computed the quadratic way: ``(φ(Q) φ(K)ᵀ) V``.

    Builds the N×M similarity matrix (row-normalised when ``normalize``); only for checking and teaching.
    """
    _check_qkv(q, k, v)
    phi = _feature_map(feature_map)
    similarity = phi(q) @ phi(k).transpose(-2, -1)  # (..., N, M)
    if normalize:
        similarity = similarity / similarity.sum(dim=-1, keepdim=True)
    return similarity @ v

"""Attention read as an MLP with predicted weights: every identity of chapter 01 against a reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from wf_lessons import attention

ATOL = 1e-5


@st.composite
def qkv_and_mask(draw, with_mask: bool = True):
    """Random (q, k, v, mask) in fp32: shapes (B, h, N, d) or (B, N, d) or (N, d), masks of several shapes."""
    lead = draw(st.sampled_from([(), (2,), (2, 3), (1, 4), (3, 1)]))
    n, m = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    d, d_v = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    q = torch.randn(*lead, n, d, generator=gen)
    k = torch.randn(*lead, m, d, generator=gen)
    v = torch.randn(*lead, m, d_v, generator=gen)
    kind = draw(st.sampled_from(["none", "full", "shared"] if with_mask else ["none"]))
    if kind == "none":
        return q, k, v, None
    mask_shape = (*lead, n, m) if kind == "full" else (n, m)
    mask = torch.rand(mask_shape, generator=gen) < draw(st.floats(0.1, 0.9))
    # Keep at least one key per query: rows with no key are where implementations may legitimately differ.
    keep = torch.randint(0, m, (*mask_shape[:-1], 1), generator=gen)
    mask.scatter_(-1, keep, True)
    return q, k, v, mask


@settings(max_examples=60, deadline=None)
@given(qkv_and_mask())
def test_attention_as_mlp_equals_scaled_dot_product_attention(case):
    q, k, v, mask = case
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(attention.attention_as_mlp(q, k, v, mask=mask), expected, atol=ATOL, rtol=0)


@settings(max_examples=60, deadline=None)
@given(qkv_and_mask())
def test_softmax_attention_equals_scaled_dot_product_attention(case):
    q, k, v, mask = case
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(attention.softmax_attention(q, k, v, mask=mask), expected, atol=ATOL, rtol=0)


@settings(max_examples=30, deadline=None)
@given(qkv_and_mask())
def test_mlp_applied_row_by_row_with_predicted_weights(case):
    """Each output row is the MLP softmax(q_i W1) W2 applied to that query alone, W1 = Kᵀ/√d, W2 = V."""
    q, k, v, mask = case
    w1, w2 = attention.predicted_weights(k, v)
    assert w1.shape == (*k.shape[:-2], k.shape[-1], k.shape[-2])  # (..., d, M): one hidden unit per token
    assert w2.shape == v.shape  # (..., M, d_v)
    out = attention.attention_as_mlp(q, k, v, mask=mask)
    full_mask = torch.ones(q.shape[:-1] + k.shape[-2:-1], dtype=torch.bool) if mask is None else mask
    full_mask = full_mask.expand(*q.shape[:-1], k.shape[-2])
    for i in range(q.shape[-2]):
        q_i = q[..., i : i + 1, :]  # (..., 1, d): a single input row
        hidden = (q_i @ w1).masked_fill(~full_mask[..., i : i + 1, :], float("-inf"))  # (..., 1, M)
        torch.testing.assert_close(out[..., i : i + 1, :], hidden.softmax(-1) @ w2, atol=ATOL, rtol=0)


@settings(max_examples=30, deadline=None)
@given(qkv_and_mask())
def test_masked_hidden_units_ignore_their_values(case):
    """A masked pair switches a hidden unit off: that token's value cannot reach that query."""
    q, k, v, mask = case
    if mask is None:
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool)
        mask[:, 0] = k.shape[-2] == 1  # switch key 0 off for every query when another key is left
    out = attention.attention_as_mlp(q, k, v, mask=mask)
    switched_off_everywhere = ~mask.expand(*q.shape[:-1], k.shape[-2]).flatten(end_dim=-2).any(0)  # (M,)
    v_changed = v.clone()
    v_changed[..., switched_off_everywhere, :] += 100.0
    torch.testing.assert_close(attention.attention_as_mlp(q, k, v_changed, mask=mask), out, atol=ATOL, rtol=0)


def test_fully_masked_query_gives_zeros_not_nan():
    gen = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 5, generator=gen).unbind(0)
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[1] = False  # query 1 may use no key at all
    q.requires_grad_(True)
    for fn in (attention.attention_as_mlp, attention.softmax_attention):
        out = fn(q, k, v, mask=mask)
        assert torch.equal(out[:, 1], torch.zeros(2, 5))
        assert torch.isfinite(out).all()
        out.sum().backward()
        assert torch.isfinite(q.grad).all()
        q.grad = None


def test_attention_matrix_rows_are_probabilities_over_kept_keys():
    gen = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 3, 6, 4, generator=gen)
    mask = torch.tril(torch.ones(6, 6, dtype=torch.bool))
    a = attention.attention_matrix(q, k, mask)
    assert a.shape == (3, 6, 6)
    torch.testing.assert_close(a.sum(-1), torch.ones(3, 6))
    assert (a[:, ~mask] == 0).all()


@st.composite
def ffn_case(draw):
    lead = draw(st.sampled_from([(), (2,), (2, 3)]))
    n, c, hidden, c_out = (draw(st.integers(1, 12)) for _ in range(4))
    bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    torch.manual_seed(seed)  # nn.Linear initialisation
    fc1, fc2 = nn.Linear(c, hidden, bias=bias), nn.Linear(hidden, c_out, bias=bias)
    x = torch.randn(*lead, n, c, generator=torch.Generator().manual_seed(seed))
    return x, fc1, fc2


@settings(max_examples=40, deadline=None)
@given(ffn_case())
def test_ffn_as_attention_equals_the_ffn(case):
    x, fc1, fc2 = case
    with torch.no_grad():
        expected = nn.Sequential(fc1, nn.GELU(), fc2)(x)
        torch.testing.assert_close(attention.ffn_as_attention(x, fc1, fc2), expected, atol=ATOL, rtol=0)
        relu_ffn = nn.Sequential(fc1, nn.ReLU(), fc2)(x)
        torch.testing.assert_close(
            attention.ffn_as_attention(x, fc1, fc2, activation=F.relu), relu_ffn, atol=ATOL, rtol=0
        )


def test_ffn_keys_values_are_input_independent_and_shaped_as_attention():
    fc1, fc2 = nn.Linear(8, 32), nn.Linear(32, 6)
    keys, values, key_bias, value_bias = attention.ffn_keys_values(fc1, fc2)
    assert keys.shape == (32, 8) and values.shape == (32, 6)  # 32 learned keys/values: the hidden width
    assert key_bias is fc1.bias and value_bias is fc2.bias
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(5, 8, generator=gen)
    with torch.no_grad():
        out = attention.ffn_as_attention(x, fc1, fc2)
        # attention over learned keys/values with GELU as the activation
        torch.testing.assert_close(out, F.gelu(x @ keys.t() + key_bias) @ values + value_bias)
        # static weights: a row's output depends on that row only
        x_other = x.clone()
        x_other[1:] = torch.randn(4, 8, generator=gen)
        torch.testing.assert_close(attention.ffn_as_attention(x_other, fc1, fc2)[0], out[0])


@settings(max_examples=40, deadline=None)
@given(
    qkv_and_mask(with_mask=False),
    st.sampled_from([("elu", True), ("elu", False), ("relu", False), ("identity", False), (torch.exp, True)]),
)
def test_linear_attention_equals_its_quadratic_form(case, variant):
    q, k, v, _ = case
    feature_map, normalize = variant
    expected = attention.linear_attention_quadratic(q, k, v, feature_map, normalize=normalize)
    got = attention.linear_attention(q, k, v, feature_map, normalize=normalize)
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=ATOL)


def test_normalised_linear_attention_is_an_average_of_values():
    gen = torch.Generator().manual_seed(3)
    q, k = torch.randn(2, 2, 7, 4, generator=gen)
    ones = torch.ones(2, 7, 3)
    torch.testing.assert_close(attention.linear_attention(q, k, ones), ones)
    quadratic = attention.FEATURE_MAPS["elu"](q) @ attention.FEATURE_MAPS["elu"](k).transpose(-2, -1)
    assert (quadratic > 0).all()  # elu + 1 is positive, so the normaliser never vanishes


def test_linear_attention_weight_size_does_not_grow_with_tokens():
    gen = torch.Generator().manual_seed(4)
    shapes = set()
    for m in (3, 30, 300):
        k, v = torch.randn(2, 4, m, 8, generator=gen), torch.randn(2, 4, m, 5, generator=gen)
        weight, z = attention.linear_attention_weight(k, v)
        shapes.add((tuple(weight.shape), tuple(z.shape)))
    assert shapes == {((2, 4, 8, 5), (2, 4, 8))}


def test_bad_inputs_raise_clear_errors():
    q = torch.randn(2, 5, 4)
    with pytest.raises(ValueError, match="feature size"):
        attention.softmax_attention(q, torch.randn(2, 5, 3), torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="number of tokens"):
        attention.attention_as_mlp(q, q, torch.randn(2, 6, 4))
    with pytest.raises(ValueError, match="leading"):
        attention.attention_as_mlp(q, torch.randn(3, 5, 4), torch.randn(3, 5, 4))
    with pytest.raises(ValueError, match="tokens, features"):
        attention.attention_as_mlp(torch.randn(4), q, q)
    with pytest.raises(TypeError, match="boolean"):
        attention.attention_as_mlp(q, q, q, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match="broadcast"):
        attention.attention_as_mlp(q, q, q, mask=torch.ones(4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="'elu'"):
        attention.linear_attention(q, q, q, feature_map="softplus")
    with pytest.raises(ValueError, match="fc1.in_features"):
        attention.ffn_as_attention(q, nn.Linear(3, 8), nn.Linear(8, 3))
    with pytest.raises(ValueError, match="must equal"):
        attention.ffn_as_attention(q, nn.Linear(4, 8), nn.Linear(9, 3))

"""Dynamic linear layers: shapes, errors, the reference formula, parameter counts, normalisation and cost."""

import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from wf_lessons import dynamic_linear as dl
from wf_lessons.dynamic_linear import (
    LINEAR_PREDICTORS,
    DynamicLinear,
    build_dynamic_linear,
    column_norms,
    parameter_count,
)

PREDICTORS = ("static", "gap", "linear", "nonlinear", "bilateral", "deep")
DYNAMIC = PREDICTORS[1:]


def make(predictor, c=16, d=32, seed=0, generator_std=None, dtype=torch.float32):
    """A seeded layer; with ``generator_std`` every generator parameter is redrawn N(0, std²), far from init."""
    torch.manual_seed(seed)
    layer = build_dynamic_linear(c, d, predictor=predictor).to(dtype)
    if generator_std is not None:
        gen = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, p in layer.named_parameters():
                if name not in ("w", "b", "weight", "bias"):
                    p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype) * generator_std)
    return layer


def tokens(b, hw, c=16, seed=0, scale=1.0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, hw[0] * hw[1], c, generator=gen, dtype=dtype) * scale


def count_flops(layer, x, hw):
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        layer(x, hw)
    return counter.get_total_flops()


# ------------------------------------------------------------------------------------------- construction
def test_registry_holds_the_ladder_in_order():
    assert tuple(LINEAR_PREDICTORS) == PREDICTORS
    for name, cls in LINEAR_PREDICTORS.items():
        layer = build_dynamic_linear(8, 16, predictor=name)
        assert type(layer) is cls and isinstance(layer, DynamicLinear) and layer.predictor == name
    assert type(build_dynamic_linear(8, 16)) is dl.BilateralDynLinear  # the default is the released layer
    assert type(build_dynamic_linear(8, 16, "static")) is dl.StaticLinear  # positional predictor


def test_unknown_predictor_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown predictor 'attention'") as err:
        build_dynamic_linear(8, 16, predictor="attention")
    assert all(name in str(err.value) for name in PREDICTORS)
    with pytest.raises(TypeError, match="predictor must be a str"):
        build_dynamic_linear(8, 16, predictor=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'predictor'"):
        dl.GapDynLinear(8, 16, predictor="deep")  # a class is its predictor: no name to contradict it


def test_one_construction_path_per_family():
    """Layers are built by name with the factory, or with their class; the base class alone is not a layer."""
    with pytest.raises(TypeError, match=r"DynamicLinear is the base class of the predictors: build a layer by "
                                        r"name with build_dynamic_linear\(in_features, out_features, "
                                        r"predictor='bilateral'\)"):
        DynamicLinear(8, 16)
    torch.manual_seed(0)
    by_name = build_dynamic_linear(8, 16, "deep", rate=2)
    torch.manual_seed(0)
    by_class = dl.DeepDynLinear(8, 16, rate=2)
    assert by_name.rate == 2 and all(torch.equal(a, b) for a, b in zip(by_name.parameters(), by_class.parameters()))


@pytest.mark.parametrize("kwargs", [dict(in_features=0), dict(out_features=2.5), dict(rate=9), dict(rate=True)])
def test_bad_sizes_are_refused(kwargs):
    args = dict(in_features=8, out_features=16, rate=4) | kwargs
    with pytest.raises(ValueError):
        build_dynamic_linear(predictor="bilateral", **args)


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_deepcopy_keeps_the_class_and_the_function(predictor):
    layer, x = make(predictor), tokens(2, (4, 4))
    clone = copy.deepcopy(layer)
    assert type(clone) is type(layer)
    assert torch.equal(clone(x), layer(x))


# ------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("predictor", PREDICTORS)
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("hw", [(4, 4), (4, 6), (5, 7), (2, 3)])
def test_shapes(predictor, batch, hw):
    layer, x = make(predictor, c=16, d=24), tokens(batch, hw)
    assert layer(x, hw).shape == (batch, hw[0] * hw[1], 24)
    assert layer.predicted_weight(x, hw).shape == (batch, 16, 24)
    dynamic = layer.dynamic_weight(x, hw)
    assert (dynamic is None) == (predictor == "static")
    if dynamic is not None:
        assert dynamic.shape == (batch, 16, 24)


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_square_grid_is_inferred_and_other_grids_need_hw(predictor):
    layer = make(predictor, generator_std=1.0)
    x = tokens(2, (6, 6))
    assert torch.equal(layer(x), layer(x, (6, 6)))
    if predictor != "static":  # a 4×9 grid pools differently from a 6×6 one
        assert not torch.allclose(layer(x), layer(x, (4, 9)), atol=1e-4)
    with pytest.raises(ValueError, match=r"pass hw=\(H, W\)"):
        layer(tokens(2, (4, 6)))


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_bad_inputs_give_clear_errors(predictor):
    layer = make(predictor)
    with pytest.raises(ValueError, match="x has 12 channels, but this layer expects in_features=16"):
        layer(torch.zeros(1, 16, 12))
    with pytest.raises(ValueError, match=r"hw=\(4, 5\) gives 20 grid positions, but x has N=16 tokens"):
        layer(torch.zeros(1, 16, 16), (4, 5))
    with pytest.raises(ValueError, match=r"tokens of shape \(B, N, C\), got a 4-D tensor"):
        layer(torch.zeros(1, 16, 4, 4))
    with pytest.raises(ValueError, match="pair of positive ints"):
        layer(torch.zeros(1, 16, 16), (16,))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer([[0.0] * 16])


@pytest.mark.parametrize("predictor", DYNAMIC)
def test_a_grid_too_thin_to_pool_is_refused(predictor):
    with pytest.raises(ValueError, match="at least 2×2 tokens, got 1×6"):
        make(predictor)(torch.zeros(1, 6, 16), (1, 6))


# ------------------------------------------------------------------------------------------- parameters
def test_state_dict_keys_follow_the_reference_layout():
    c, d, r = 16, 64, 4
    expected = {
        "w": (c, d),
        "b": (d,),
        "wfm.weight": (c // r + d // r, c),
        "wfm.bias": (c // r + d // r,),
        "w1": (c // r, c),
        "w2": (d // r, d),
    }
    deep_extra = {
        "hidden1.weight": (c // r, c // r),
        "hidden1.bias": (c // r,),
        "hidden2.weight": (d // r, d // r),
        "hidden2.bias": (d // r,),
    }
    for predictor in PREDICTORS:
        shapes = {k: tuple(v.shape) for k, v in build_dynamic_linear(c, d, predictor=predictor).state_dict().items()}
        if predictor == "static":
            assert shapes == {"weight": (d, c), "bias": (d,)}
        else:
            assert shapes == (expected | deep_extra if predictor == "deep" else expected)


def test_static_is_an_nn_linear():
    reference = nn.Linear(16, 32)
    layer = build_dynamic_linear(16, 32, predictor="static")
    layer.load_state_dict(reference.state_dict())
    x = tokens(2, (3, 5))
    assert torch.equal(layer(x, (3, 5)), reference(x))
    assert torch.equal(layer.predicted_weight(x, (3, 5)), reference.weight.t().expand(2, 16, 32))


def test_bilateral_has_the_papers_parameter_count():
    assert sum(p.numel() for p in build_dynamic_linear(192, 768).parameters()) == 351_216
    assert parameter_count("bilateral", 192, 768) == 351_216
    for c in (64, 192, 384):  # 9.5·C² + 5.25·C at D = 4C, r = 4
        assert parameter_count("bilateral", c, 4 * c) == 9.5 * c**2 + 5.25 * c


@pytest.mark.parametrize("predictor", PREDICTORS)
@pytest.mark.parametrize("sizes", [(192, 768, 4), (30, 50, 4), (24, 24, 2), (40, 8, 8)])
def test_parameter_counts_follow_the_formulas(predictor, sizes):
    big_c, big_d, r = sizes
    c, d = big_c // r, big_d // r
    formula = {
        "static": big_c * big_d + big_d,
        "deep": big_c * big_d + big_d + (big_c + 1) * (c + d) + c * big_c + d * big_d + c * c + c + d * d + d,
    }.get(predictor, big_c * big_d + big_d + (big_c + 1) * (c + d) + c * big_c + d * big_d)
    layer = build_dynamic_linear(big_c, big_d, predictor=predictor, rate=r)
    assert sum(p.numel() for p in layer.parameters()) == formula
    assert parameter_count(predictor, big_c, big_d, rate=r) == formula


def test_initialisation_follows_the_reference():
    torch.manual_seed(0)
    layer = build_dynamic_linear(192, 768, predictor="deep")
    # trunc_normal_(std=0.02) cuts at ±2 (absolute, as timm's), i.e. at 100 std: the std stays 0.02. PyTorch's
    # default inits differ clearly (nn.Linear(192, ·): std 0.042; nn.Linear(48, 48): std 0.083; randn: 1).
    for name in ("w", "b", "w1", "w2", "wfm.weight", "hidden1.weight", "hidden2.weight"):
        assert abs(layer.get_parameter(name).std().item() - 0.02) < 0.002, name
    for name in ("wfm.bias", "hidden1.bias", "hidden2.bias"):
        assert torch.count_nonzero(layer.get_parameter(name)) == 0, name
    static = build_dynamic_linear(192, 768, predictor="static")
    assert abs(static.weight.std().item() - 0.02) < 0.002 and torch.count_nonzero(static.bias) == 0


# ------------------------------------------------------------------------------------------- function
@pytest.mark.parametrize("predictor", PREDICTORS)
def test_gradients_reach_every_parameter(predictor):
    layer = make(predictor)
    x = tokens(2, (5, 6)).requires_grad_()
    (layer(x, (5, 6)) * tokens(2, (5, 6), c=32, seed=1)).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().max() > 0, name
    assert x.grad.abs().max() > 0


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_samples_do_not_see_each_other(predictor):
    layer, hw = make(predictor, generator_std=1.0), (5, 6)
    x = tokens(3, hw)
    y = layer(x, hw)
    x_changed = x.clone()
    x_changed[2] = tokens(1, hw, seed=7)[0]
    y_changed = layer(x_changed, hw)
    torch.testing.assert_close(y_changed[:2], y[:2], atol=1e-6, rtol=0)
    assert (y_changed[2] - y[2]).abs().max() > 1e-2
    for i in range(3):  # one sample alone gives what it gives inside the batch
        torch.testing.assert_close(layer(x[i : i + 1], hw)[0], y[i], atol=1e-6, rtol=1e-5)


def paper_bilateral(x, hw, w, b, a_weight, a_bias, w1, w2, mutation=None):
    """The reference layer (chapters/paper_notes.md) line by line; ``mutation`` breaks one detail (so it can fail)."""
    batch, n, c = x.shape
    p = nn.AvgPool2d(2)(x.transpose(1, 2).reshape(batch, c, *hw)).flatten(2).transpose(1, 2)  # B×N'×C
    u, v = torch.split(p @ a_weight.T + a_bias, [w1.shape[0], w2.shape[0]], dim=-1)
    kf = F.silu(u) @ w1  # B×N'×C
    vf = F.silu(v) @ w2  # B×N'×D
    count = p.shape[1] if mutation == "divide by N'" else n
    w_hat = kf.transpose(1, 2) @ vf * c**-0.5 / count  # B×C×D
    norm_dim = -1 if mutation == "norm over D" else -2
    plus = 0.0 if mutation == "no +1" else 1.0
    w_hat = w_hat / (w_hat.norm(dim=norm_dim, keepdim=True) + plus)
    return x @ (w + w_hat) + b


@pytest.mark.parametrize("hw", [(6, 6), (5, 7), (7, 4)])
def test_bilateral_equals_the_papers_pseudo_code(hw):
    layer = make("bilateral", c=16, d=64, generator_std=1.0)
    x = tokens(2, hw)
    params = (layer.w, layer.b, layer.wfm.weight, layer.wfm.bias, layer.w1, layer.w2)
    with torch.no_grad():
        got = layer(x, hw)
        torch.testing.assert_close(got, paper_bilateral(x, hw, *params), atol=1e-6, rtol=0)
        for mutation in ("divide by N'", "norm over D", "no +1"):  # each detail shows above the tolerance
            assert (got - paper_bilateral(x, hw, *params, mutation=mutation)).abs().max() > 1e-3, mutation


def test_bilateral_is_linear_attention_with_x_as_query_plus_w0():
    layer, hw = make("bilateral", generator_std=1.0), (6, 4)
    x = tokens(2, hw)
    with torch.no_grad():
        k, v = layer.keys_values(x, hw)  # (B, N', C), (B, N', D)
        raw = layer.raw_dynamic_weight(x, hw)
        v_scaled = v / (raw.norm(dim=-2, keepdim=True) + 1) * layer.scale / x.shape[1]  # columns normalised
        attention = (x @ k.transpose(1, 2)) @ v_scaled  # (B, N, N') scores, unnormalised, times values
        torch.testing.assert_close(layer(x, hw), x @ layer.w + attention + layer.b, atol=1e-6, rtol=1e-5)


def test_gap_is_bilateral_fed_the_average_token_everywhere():
    gap, hw = make("gap", generator_std=1.0), (4, 6)
    bilateral = make("bilateral")
    bilateral.load_state_dict(gap.state_dict())
    x = tokens(2, hw)
    constant = x.mean(dim=1, keepdim=True).expand_as(x)
    with torch.no_grad():
        got = gap.dynamic_weight(x, hw)
        torch.testing.assert_close(got, bilateral.dynamic_weight(constant, hw), atol=1e-6, rtol=1e-5)
        assert (got - bilateral.dynamic_weight(x, hw)).abs().max() > 1e-3
        assert torch.linalg.matrix_rank(gap.raw_dynamic_weight(x, hw)).tolist() == [1, 1]


@pytest.mark.parametrize("predictor", ["linear", "bilateral", "deep"])
def test_the_bottleneck_caps_the_rank_of_the_prediction(predictor):
    layer = make(predictor, c=16, d=64, generator_std=1.0, dtype=torch.float64)
    with torch.no_grad():
        ranks = torch.linalg.matrix_rank(layer.raw_dynamic_weight(tokens(2, (6, 6), dtype=torch.float64), (6, 6)))
        assert ranks.tolist() == [16 // 4] * 2  # min(N' = 9, C/r = 4, D/r = 16)
        ranks = torch.linalg.matrix_rank(layer.raw_dynamic_weight(tokens(2, (3, 5), dtype=torch.float64), (3, 5)))
        assert ranks.tolist() == [2] * 2  # min(N' = 1·2, C/r, D/r)


def test_the_linear_predictor_cannot_tell_an_image_from_its_negative():
    x, hw = tokens(2, (4, 4)), (4, 4)
    linear, bilateral = make("linear", generator_std=1.0), make("bilateral", generator_std=1.0)
    with torch.no_grad():
        for layer in (linear, bilateral):
            layer.wfm.bias.zero_()  # as at initialisation
        torch.testing.assert_close(linear.dynamic_weight(-x, hw), linear.dynamic_weight(x, hw))
        assert (bilateral.dynamic_weight(-x, hw) - bilateral.dynamic_weight(x, hw)).abs().max() > 1e-2


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_predicted_weight_is_static_plus_dynamic(predictor):
    layer, x = make(predictor, generator_std=1.0), tokens(2, (4, 6))
    with torch.no_grad():
        weight = layer.predicted_weight(x, (4, 6))
        dynamic = layer.dynamic_weight(x, (4, 6))
        expected = layer.static_weight() + (0 if dynamic is None else dynamic)
        torch.testing.assert_close(weight, expected.expand_as(weight), atol=0, rtol=0)
        torch.testing.assert_close(layer(x, (4, 6)), x @ weight + layer.static_bias(), atol=1e-6, rtol=1e-5)


# ------------------------------------------------------------------------------------------- normalisation
@settings(max_examples=60, deadline=None)
@given(
    predictor=st.sampled_from(DYNAMIC),
    seed=st.integers(0, 10_000),
    batch=st.integers(1, 3),
    h=st.integers(2, 7),
    w=st.integers(2, 7),
    log_input_scale=st.floats(-3, 3),
    log_generator_std=st.floats(-2, 0.5),
)
def test_every_dynamic_column_has_norm_below_one(predictor, seed, batch, h, w, log_input_scale, log_generator_std):
    """For any input: raw norms r reach ~1e10 over these ranges; float64 keeps r/(r+1) < 1 (float32 does to ~1e7)."""
    layer = make(predictor, c=8, d=16, seed=seed, generator_std=10**log_generator_std, dtype=torch.float64)
    x = tokens(batch, (h, w), c=8, seed=seed, scale=10**log_input_scale, dtype=torch.float64)
    with torch.no_grad():
        norms = column_norms(layer.dynamic_weight(x, (h, w)))
    assert norms.shape == (batch, 16)
    assert (norms < 1).all(), norms.max().item()


@pytest.mark.parametrize("predictor", DYNAMIC)
def test_the_normalisation_is_what_keeps_columns_below_one(predictor):
    layer, x = make(predictor, generator_std=1.0), tokens(2, (4, 4), scale=30.0)
    with torch.no_grad():
        raw = column_norms(layer.raw_dynamic_weight(x, (4, 4)))
        normalised = column_norms(layer.dynamic_weight(x, (4, 4)))
    assert raw.max() > 10  # without the normalisation the property test would fail
    torch.testing.assert_close(normalised, raw / (raw + 1))


@pytest.mark.parametrize("predictor", DYNAMIC)
def test_the_dynamic_part_starts_100x_smaller_than_the_static_part(predictor):
    torch.manual_seed(0)
    layer = build_dynamic_linear(192, 768, predictor=predictor)
    x = F.layer_norm(tokens(2, (14, 14), c=192), (192,))  # linear1 reads LayerNorm-ed tokens
    with torch.no_grad():
        dynamic = column_norms(layer.dynamic_weight(x))  # (B, D)
        static = column_norms(layer.static_weight()[None])  # (1, D)
    assert dynamic.max() * 100 < static.min()


# ------------------------------------------------------------------------------------------- cost
@pytest.mark.parametrize("predictor", PREDICTORS)
def test_counted_flops_grow_linearly_with_the_token_count(predictor):
    layer = make(predictor, c=32, d=128)
    small = count_flops(layer, tokens(1, (8, 8), c=32), (8, 8))
    large = count_flops(layer, tokens(1, (16, 16), c=32), (16, 16))  # 4× the tokens
    assert 0.95 * 4 <= large / small <= 1.05 * 4


def test_bilateral_flops_match_the_mac_count():
    c, d, n = 192, 768, 196
    pooled = n // 4
    macs = n * c * d + pooled * (c * (c // 4 + d // 4) + (c // 4) * c + (d // 4) * d + c * d)
    assert count_flops(build_dynamic_linear(c, d), tokens(1, (14, 14), c=c), None) == 2 * macs
    assert macs == 6.375 * n * c**2  # ≈ 6.4·N·C² MACs (chapters/paper_notes.md)

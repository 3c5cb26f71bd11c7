"""Dynamic depthwise convolutions: shapes, gradients, the reference layer, parameter counts, norms and costs."""

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from wf_lessons import dynamic_dwconv as dd
from wf_lessons.dynamic_dwconv import DWC_PREDICTORS, DynamicDWConv, build_dynamic_dwconv

NAMES = list(DWC_PREDICTORS)
DYNAMIC = [n for n in NAMES if n != "static"]


def make(name, dim=8, kernel_size=3, seed=0):
    torch.manual_seed(seed)
    return build_dynamic_dwconv(dim, kernel_size, predictor=name)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


class ReferenceDynCnn(nn.Module):
    """``adaptive`` transcribed from the reference ``DynCnn`` (chapters/paper_notes.md)."""

    def __init__(self, dim):
        super().__init__()
        self.w = nn.Parameter(torch.randn(dim, 1, 3, 3))
        self.b = nn.Parameter(torch.randn(dim))
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.wfm = nn.Sequential(nn.Conv2d(dim, dim, 1), nn.GELU(), nn.Conv2d(dim, dim, 1, bias=False))
        nn.init.trunc_normal_(self.w, std=0.02)
        nn.init.trunc_normal_(self.b, std=0.02)

    def forward(self, x):
        B, C, H, W = x.shape
        k = self.wfm(self.pool(x)).reshape(B * C, 1, 3, 3)
        k = k / (k.norm(dim=(-2, -1), keepdim=True) + 1.0)
        k = k + self.w.repeat(B, 1, 1, 1)
        y = F.conv2d(x.reshape(1, B * C, H, W), k, self.b.repeat(B), padding=1, groups=B * C)
        return y.reshape(B, C, H, W)


# ------------------------------------------------------------------------------------------------ shapes
def test_registry_order_and_classes():
    assert NAMES == ["static", "gap", "adaptive", "amp_dir", "conv"]
    for name, cls in DWC_PREDICTORS.items():
        layer = build_dynamic_dwconv(4, predictor=name)
        assert type(layer) is cls and isinstance(layer, DynamicDWConv) and layer.predictor == name


def test_default_predictor_is_adaptive():
    assert type(build_dynamic_dwconv(4)) is dd.AdaptiveDWConv
    assert type(build_dynamic_dwconv(4, 3, "conv")) is dd.ConvDWConv  # positional predictor


def test_one_construction_path_per_family():
    """Layers are built by name with the factory, or with their class; the base class alone is not a layer."""
    with pytest.raises(TypeError, match=r"DynamicDWConv is the base class of the predictors: build a layer by name "
                                        r"with build_dynamic_dwconv\(dim, kernel_size=3, predictor='adaptive'\)"):
        DynamicDWConv(4)
    with pytest.raises(ValueError, match="unknown predictor 'deep'; valid predictors: static, gap, adaptive"):
        build_dynamic_dwconv(4, predictor="deep")
    torch.manual_seed(0)
    by_name = build_dynamic_dwconv(4, 5, "amp_dir")
    torch.manual_seed(0)
    by_class = dd.AmpDirDWConv(4, 5)
    assert by_name.kernel_size == 5 and all(torch.equal(a, b) for a, b in zip(by_name.parameters(),
                                                                             by_class.parameters()))


def test_the_layer_module_does_not_import_the_data_or_run_log_modules():
    """The benchmark's command line lives in wf_lessons.bench: a layer imports torch and the argument checks only."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(dd))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in imported if m.startswith("wf_lessons")} == {"wf_lessons.checks"}, imported
    assert not hasattr(dd, "main") and not hasattr(dd, "benchmark")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 8, 1, 1), (2, 8, 5, 7), (3, 8, 32, 32), (2, 8, 3, 64)])
def test_shapes(name, shape):
    layer = make(name)
    x = randn(*shape)
    assert layer(x).shape == shape
    for method in (layer.raw_kernels, layer.dynamic_kernels, layer.predicted_kernels):
        assert method(x).shape == (shape[0], 8, 3, 3)


@pytest.mark.parametrize("name", NAMES)
def test_other_kernel_sizes(name):
    layer = make(name, dim=6, kernel_size=5)
    x = randn(2, 6, 9, 11)
    assert layer(x).shape == x.shape and layer.predicted_kernels(x).shape == (2, 6, 5, 5)
    # the forward pass applies exactly the predicted kernels
    expected = torch.cat(
        [F.conv2d(x[i : i + 1], layer.predicted_kernels(x)[i].unsqueeze(1), layer.static_bias, padding=2, groups=6)
         for i in range(2)]
    )
    assert torch.allclose(layer(x), expected, atol=1e-6)


# ------------------------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter_and_the_input(name):
    layer = make(name)
    x = randn(2, 8, 7, 6).requires_grad_()
    layer(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for pname, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_gradcheck_double(name):
    layer = make(name, dim=2).double()
    x = randn(2, 2, 3, 4).double().requires_grad_()  # 48 inputs: 96 forward passes for the numerical Jacobian
    assert torch.autograd.gradcheck(layer, (x,), eps=1e-6, atol=1e-5)


# ------------------------------------------------------------------------------------------------ batch
@pytest.mark.parametrize("name", NAMES)
def test_batch_independence(name):
    layer = make(name)
    x = randn(4, 8, 10, 13)
    together = layer(x)
    alone = torch.cat([layer(x[i : i + 1]) for i in range(4)])
    assert (together - alone).abs().max() < 1e-6
    changed = x.clone()
    changed[2] = randn(8, 10, 13, seed=1)  # another image in slot 2 leaves the others' outputs untouched
    out = layer(changed)
    assert torch.equal(out[[0, 1, 3]], together[[0, 1, 3]]) and not torch.allclose(out[2], together[2])


@pytest.mark.parametrize("name", DYNAMIC)
def test_kernels_depend_on_the_image(name):
    layer = make(name)
    kernels = layer.predicted_kernels(randn(2, 8, 12, 12))
    assert (kernels[0] - kernels[1]).abs().max() > 1e-6


def test_static_kernels_do_not_depend_on_the_image():
    layer = make("static")
    kernels = layer.predicted_kernels(randn(2, 8, 12, 12))
    assert torch.equal(kernels[0], kernels[1]) and torch.equal(kernels[0], layer.weight.squeeze(1))


# ------------------------------------------------------------------------------------------------ reference
def test_adaptive_state_dict_keys_match_the_reference_layout():
    assert list(make("adaptive").state_dict()) == ["w", "b", "wfm.0.weight", "wfm.0.bias", "wfm.2.weight"]
    shapes = {k: tuple(v.shape) for k, v in make("adaptive", dim=6).state_dict().items()}
    assert shapes == {"w": (6, 1, 3, 3), "b": (6,), "wfm.0.weight": (6, 6, 1, 1), "wfm.0.bias": (6,),
                      "wfm.2.weight": (6, 6, 1, 1)}


@pytest.mark.parametrize("shape", [(2, 16, 14, 14), (3, 16, 32, 32), (2, 16, 5, 7), (1, 16, 1, 1), (2, 16, 64, 64)])
def test_adaptive_equals_the_reference_transcription(shape):
    torch.manual_seed(0)
    reference = ReferenceDynCnn(16)
    # train-like weights: larger than at init so the dynamic path matters
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(randn(*p.shape, seed=p.numel()) * 0.3)
    layer = build_dynamic_dwconv(16, predictor="adaptive")
    layer.load_state_dict(reference.state_dict(), strict=True)
    reference.load_state_dict(layer.state_dict(), strict=True)
    x = randn(*shape, seed=2)
    assert (layer(x) - reference(x)).abs().max() < 1e-6


def test_adaptive_init_draws_like_the_reference():
    torch.manual_seed(7)
    reference = ReferenceDynCnn(12)
    torch.manual_seed(7)
    layer = build_dynamic_dwconv(12, predictor="adaptive")
    for (name, a), (_, b) in zip(reference.state_dict().items(), layer.state_dict().items()):
        assert torch.equal(a, b), name
    assert 0.01 < layer.w.std() < 0.03 and 0.01 < layer.b.std() < 0.03  # trunc-normal, std 0.02


def test_static_is_exactly_a_depthwise_conv2d():
    torch.manual_seed(3)
    conv = nn.Conv2d(8, 8, 3, padding=1, groups=8)
    torch.manual_seed(3)
    layer = build_dynamic_dwconv(8, predictor="static")
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert all(torch.equal(a, b) for a, b in zip(conv.state_dict().values(), layer.state_dict().values()))
    layer.load_state_dict(randomised(conv).state_dict(), strict=True)
    x = randn(2, 8, 9, 9)
    assert (layer(x) - conv(x)).abs().max() < 1e-6


def randomised(module):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(randn(*p.shape, seed=11))
    return module


@pytest.mark.parametrize("method", dd.CONV_METHODS)
def test_conv_methods_agree(method):
    x, kernels, bias = randn(3, 5, 9, 7), randn(3, 5, 3, 3, seed=1), randn(5, seed=2)
    reference = torch.cat(
        [F.conv2d(x[i : i + 1], kernels[i].unsqueeze(1), bias, padding=1, groups=5) for i in range(3)]
    )
    assert (dd.per_sample_depthwise_conv(x, kernels, bias, method) - reference).abs().max() < 1e-5
    no_bias = dd.per_sample_depthwise_conv(x, kernels, None, method)
    assert (no_bias + bias.view(1, 5, 1, 1) - reference).abs().max() < 1e-5


def test_conv_method_errors():
    with pytest.raises(ValueError, match="valid methods: grouped, per_sample, shift_add, unfold"):
        dd.per_sample_depthwise_conv(randn(1, 2, 3, 3), randn(1, 2, 3, 3), method="fft")
    with pytest.raises(ValueError, match="same B and C"):
        dd.per_sample_depthwise_conv(randn(1, 2, 3, 3), randn(2, 2, 3, 3))
    with pytest.raises(ValueError, match="odd size"):
        dd.per_sample_depthwise_conv(randn(1, 2, 3, 3), randn(1, 2, 2, 2))


# ------------------------------------------------------------------------------------------------ parameters
FORMULAS = {  # counted by hand, at k = 3
    "static": lambda c: 10 * c,
    "gap": lambda c: 2.5 * c * c + 19.25 * c,
    "adaptive": lambda c: 2 * c * c + 11 * c,
    "amp_dir": lambda c: 3 * c * c + 12 * c,
    "conv": lambda c: c * c + 20 * c,
}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_adaptive_parameter_count_at_wfm_t_width():
    assert n_params(build_dynamic_dwconv(192, predictor="adaptive")) == 75_840


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [4, 8, 64, 192])
def test_parameter_formulas(name, dim):
    count = n_params(build_dynamic_dwconv(dim, predictor=name))
    assert count == FORMULAS[name](dim) == dd.parameter_count(name, dim)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_general(name):
    for dim, k in [(6, 5), (3, 1), (10, 7)]:
        assert n_params(build_dynamic_dwconv(dim, k, predictor=name)) == dd.parameter_count(name, dim, k)


# ------------------------------------------------------------------------------------------------ norm bound
@settings(max_examples=30, deadline=None)
@given(
    name=st.sampled_from(NAMES),
    batch=st.integers(1, 3),
    dim=st.integers(1, 6),
    height=st.integers(1, 12),
    width=st.integers(1, 12),
    scale=st.floats(1e-3, 3.0),  # the scale a dynamic block's LayerNorm gives its DWC
    seed=st.integers(0, 2**16),
)
def test_dynamic_kernel_norm_is_below_one(name, batch, dim, height, width, scale, seed):
    layer = make(name, dim=dim, seed=seed)
    x = randn(batch, dim, height, width, seed=seed) * scale
    dynamic = layer.dynamic_kernels(x)
    norms = dynamic.norm(dim=(-2, -1))  # (B, C)
    assert norms.shape == (batch, dim) and (norms < 1).all()
    assert torch.allclose(layer.predicted_kernels(x) - layer.static_kernel.squeeze(1), dynamic, atol=1e-6)
    if name == "static":
        assert (norms == 0).all()


@pytest.mark.parametrize("name", NAMES)
def test_norm_bound_holds_up_to_float_rounding_for_huge_inputs(name):
    # r / (r + 1) and sigmoid both round to 1.0 in float32 when saturated: the bound is then <= 1 up to rounding
    layer = make(name)
    norms = layer.dynamic_kernels(randn(3, 8, 5, 6) * 1e4).norm(dim=(-2, -1))
    assert (norms <= 1 + 1e-6).all()


def test_normalisation_maps_norm_r_to_r_over_r_plus_one():
    raw = torch.zeros(1, 1, 3, 3)
    raw[0, 0, 1, 1] = 3.0
    assert torch.allclose(dd.normalize_kernels(raw).norm(), torch.tensor(0.75))


def test_amp_dir_norm_is_its_amplitude():
    layer = make("amp_dir")
    x = randn(2, 8, 10, 10)
    norms = layer.dynamic_kernels(x).norm(dim=(-2, -1))
    amplitudes = layer.amplitudes(x)
    assert torch.allclose(norms, amplitudes, atol=1e-6) and ((amplitudes > 0) & (amplitudes < 1)).all()


# ------------------------------------------------------------------------------------------------ where taps look
@pytest.mark.parametrize("size", [1, 5, 16, 31, 32, 64])
def test_bins_are_pytorchs(size):
    bins = dd.adaptive_pool_bins(size)
    x = randn(1, 2, size, size)
    manual = torch.stack(
        [torch.stack([x[..., r0:r1, c0:c1].mean(dim=(-2, -1)) for c0, c1 in bins], dim=-1) for r0, r1 in bins],
        dim=-2,
    )  # (1, 2, 3, 3)
    assert (manual - F.adaptive_avg_pool2d(x, 3)).abs().max() < 1e-6


def test_bins_overlap_when_size_is_not_a_multiple_of_three():
    assert dd.adaptive_pool_bins(32) == [(0, 11), (10, 22), (21, 32)]
    assert dd.adaptive_pool_bins(64) == [(0, 22), (21, 43), (42, 64)]
    assert dd.adaptive_pool_bins(48) == [(0, 16), (16, 32), (32, 48)]


def test_tap_sources():
    size = (32, 32)
    adaptive = dd.tap_sources(make("adaptive"), size, (0, 0)) > 0
    expected = torch.zeros(size, dtype=torch.bool)
    expected[:11, :11] = True  # region (0, 0): rows and columns [0, 11)
    assert torch.equal(adaptive, expected)
    conv = dd.tap_sources(make("conv"), size, (0, 0)) > 0
    expected[:22, :22] = True  # regions (0..1, 0..1): the neighbours through the 3x3 depthwise conv
    assert torch.equal(conv, expected)
    assert (dd.tap_sources(make("gap"), size, (0, 0)) > 0).all()
    assert (dd.tap_sources(make("static"), size, (1, 1)) == 0).all()


@pytest.mark.parametrize("name", ["adaptive", "amp_dir"])
def test_region_aligned_predictors_flip_with_the_image(name):
    layer = make(name)
    x = randn(2, 8, 16, 13)
    assert (layer.dynamic_kernels(x.flip(-1)) - layer.dynamic_kernels(x).flip(-1)).abs().max() < 1e-6


# ------------------------------------------------------------------------------------------------ cost
@pytest.mark.parametrize("name", NAMES)
def test_prediction_cost_does_not_grow_with_the_image_and_total_is_linear(name):
    layer = make(name, dim=16)
    sizes = [6, 12, 17, 40]
    counts = [dd.flop_counts(layer, torch.zeros(2, 16, s, s)) for s in sizes]
    predictions = {c["prediction"] for c in counts}
    assert len(predictions) == 1
    assert (predictions.pop() == 0) == (name == "static")
    for s, c in zip(sizes, counts):
        assert c["convolution"] == 2 * 2 * 16 * s * s * 9  # 2 FLOPs per multiply-add, 9 taps
    # total = a + b * (H W): equal slopes between consecutive sizes
    slopes = {
        (c2["total"] - c1["total"]) / (s2 * s2 - s1 * s1) for (s1, c1), (s2, c2) in zip(zip(sizes, counts),
                                                                                       zip(sizes[1:], counts[1:]))
    }
    assert slopes == {2 * 2 * 16 * 9}


def test_adaptive_prediction_flops():
    counts = dd.flop_counts(make("adaptive", dim=192), torch.zeros(1, 192, 14, 14))
    assert counts["prediction"] == 2 * (2 * 9 * 192 * 192)  # two 1x1 convs over 9 pooled cells


# ------------------------------------------------------------------------------------------------ errors
def test_errors():
    layer = make("adaptive")
    with pytest.raises(ValueError, match=r"expected 8 channels.*\(2, 5, 4, 4\)"):
        layer(torch.zeros(2, 5, 4, 4))
    with pytest.raises(ValueError, match="4-D input.*3-D"):
        layer(torch.zeros(8, 4, 4))
    with pytest.raises(ValueError, match="4-D input"):
        layer.predicted_kernels(torch.zeros(1, 1, 8, 4, 4))
    with pytest.raises(ValueError, match="valid predictors: static, gap, adaptive, amp_dir, conv"):
        build_dynamic_dwconv(8, predictor="bilateral")
    with pytest.raises(TypeError, match="unexpected keyword argument 'predictor'"):
        dd.AdaptiveDWConv(8, predictor="gap")  # a class is its predictor: no name to contradict it
    with pytest.raises(ValueError, match="dim must be a positive int"):
        build_dynamic_dwconv(0)
    with pytest.raises(ValueError, match="kernel_size must be a positive odd int"):
        build_dynamic_dwconv(8, 4)
    with pytest.raises(TypeError, match="floating-point"):
        layer(torch.zeros(1, 8, 4, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer([[0.0]])
    with pytest.raises(ValueError, match="B, H, W >= 1"):
        layer(torch.zeros(1, 8, 0, 4))
    with pytest.raises(ValueError, match="unknown predictor"):
        dd.parameter_count("deep", 8)


def test_benchmark_smoke():
    from wf_lessons import bench

    rows = bench.dwconv_benchmark([(2, 3, 5)], backward=True, min_run_time=0.001, rounds=2)
    assert rows[0]["size"] == (2, 3, 5) and set(rows[0]["ms"]) == set(dd.CONV_METHODS)
    assert all(math.isfinite(v) and v > 0 for v in rows[0]["ms"].values())
    table = bench.format_dwconv_benchmark(rows)
    assert "grouped ms" in table and "unfold ×" in table and "2, 3, 5" in table

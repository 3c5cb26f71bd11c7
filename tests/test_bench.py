import json

import pytest
import torch

from wf_lessons import bench, runlog
from wf_lessons.complexity import softmax_attention_flops
from wf_lessons.models import ViT, WeightFormer

SMALL = {"img_size": 16, "patch_size": 2, "num_classes": 10, "embed_dim": 16, "depth": 2}


def test_crossover_is_interpolated_in_log_space():
    tokens = [100, 400, 1600]
    assert bench.crossover(tokens, [2.0, 1.0, 0.5], [1.0, 1.0, 1.0]) == "N ≈ 400 tokens"
    assert bench.crossover(tokens, [4.0, 1.0, 0.25], [1.0, 2.0, 1.0]) == "N ≈ 252 tokens"  # 100·4^(2/3)
    assert bench.crossover(tokens, [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]).startswith("faster at every")
    assert bench.crossover(tokens, [3.0, 3.0, 3.0], [1.0, 1.0, 1.5]) == "not reached up to N = 1600 (ratio there 2.00×)"


def test_activation_memory_is_linear_for_weightformer_and_quadratic_for_math_attention():
    wf = WeightFormer(**SMALL)
    vit = ViT(**SMALL, num_heads=2).set_attn_backend("math")
    wf_small, wf_large = (bench.activation_bytes(wf, torch.randn(1, 3, s, s)) for s in (32, 64))
    vit_small, vit_large = (bench.activation_bytes(vit, torch.randn(1, 3, s, s)) for s in (32, 64))
    assert 3.6 < wf_large / wf_small < 4.4
    assert vit_large / vit_small > 6  # the N×N attention matrices dominate


def test_summary_and_log_from_a_tiny_run(tmp_path):
    variants = {"wf-cifar-quick": ("wf-cifar-quick", None), "deit-cifar-quick math": ("deit-cifar-quick", "math")}
    measured = bench.scaling([16, 32, 64], repeats=1, device=torch.device("cpu"), variants=variants, progress=False)
    summary = bench.summarize(measured)
    assert measured["tokens"] == [16, 64, 256]  # patch 4
    assert set(summary["slopes_last3"]) == set(variants)
    assert summary["slopes_last3"]["wf-cifar-quick"]["flops"] == pytest.approx(1.0, abs=0.05)
    path = runlog.write({**runlog.environment(torch.device("cpu")), **measured, **summary}, "tiny", tmp_path)
    log = json.loads(path.read_text())
    assert log["torch"] == torch.__version__ and log["results"]["wf-cifar-quick"][0]["tokens"] == 16
    assert runlog.read(path)["tokens"] == [16, 64, 256]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runlog.read(tmp_path / "missing.json")


def test_scaling_times_in_interleaved_rounds_and_keeps_each_best(monkeypatch):
    variants = {"wf": ("wf-cifar-quick", None), "deit": ("deit-cifar-quick", "math")}
    calls, slow_round = [], {0: 5.0, 1: 1.0, 2: 3.0}  # round -> seconds: the best is round 1's

    def fake_time_once(model, images):
        calls.append((type(model).__name__, images.shape[-1]))
        seconds = slow_round[(len(calls) - 1) // 4] * images.shape[-1]
        return {"forward_s": seconds, "forward_backward_s": 2 * seconds}

    monkeypatch.setattr(bench, "time_once", fake_time_once)
    measured = bench.scaling([16, 32], repeats=3, device=torch.device("cpu"), variants=variants, progress=False)
    one_round = [("WeightFormer", 16), ("ViT", 16), ("WeightFormer", 32), ("ViT", 32)]
    assert calls == one_round * 3  # every round visits every size and variant once, smaller sizes first
    assert [row["forward_s"] for row in measured["results"]["wf"]] == [16.0, 32.0]
    assert [row["forward_backward_s"] for row in measured["results"]["deit"]] == [32.0, 64.0]
    assert measured["repeats"] == 3 and measured["results"]["deit"][0]["flops"] > 0


def test_a_size_out_of_memory_is_recorded_and_the_sweep_goes_on(monkeypatch, capsys):
    variants = {"wf": ("wf-cifar-quick", None), "deit": ("deit-cifar-quick", "math")}

    def fake_time_once(model, images):  # attention's N×N scores do not fit at the largest size
        if isinstance(model, ViT) and images.shape[-1] == 64:
            raise torch.OutOfMemoryError("CUDA out of memory (injected)")
        return {"forward_s": float(images.shape[-1]), "forward_backward_s": 2.0 * images.shape[-1] ** 2}

    monkeypatch.setattr(bench, "time_once", fake_time_once)
    measured = bench.scaling([16, 32, 64], repeats=2, device=torch.device("cpu"), variants=variants, progress=False)
    wf, deit = measured["results"]["wf"], measured["results"]["deit"]
    assert not any(r.get("out_of_memory") for r in wf) and [r["forward_s"] for r in wf] == [16.0, 32.0, 64.0]
    assert deit[2] == {"side": 64, "tokens": 256, "out_of_memory": True} and "forward_s" in deit[1]
    summary = bench.summarize(measured)
    assert summary["time_ratio_wf_over"]["deit"][2] is None
    assert summary["time_ratio_wf_over"]["deit"][0] == pytest.approx(2 * 16**2 / (2 * 16**2))
    assert summary["slopes_last3"]["deit"]["forward_s"] == pytest.approx(1.0 / 2)  # over the two sizes that fitted
    assert summary["crossover_forward_backward"]["deit"].startswith("not reached up to N = 64")
    bench.print_report(measured, summary)
    out = capsys.readouterr().out
    assert "256   out of memory" in out and "—" in out


def test_fused_attention_flops_are_counted_like_math():
    vit = ViT(**SMALL, num_heads=2)
    images = torch.randn(1, 3, 32, 32)
    assert bench.forward_flops(vit, images) == bench.forward_flops(vit.set_attn_backend("math"), images)
    assert vit.set_attn_backend("fused").attn_backend == "fused"
    attention = 2 * softmax_attention_flops(n=256, d=8, heads=2)  # two blocks, 256 tokens, 2 heads of 8
    assert bench.forward_flops(vit, images) > attention

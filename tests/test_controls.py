"""Chapter 08's controlled study: the zero-prediction and zero-init switches, the validation split, what a run with
a validation split logs, the learning-rate sweep and the paired comparisons."""

import json
import math

import pytest
import torch
from scipy import stats
from statsmodels.stats.multitest import multipletests
from test_train import _data

from wf_lessons import ablate, models, runlog, train
from wf_lessons.data import validation_split
from wf_lessons.dynamic_dwconv import DynamicDWConv, build_dynamic_dwconv
from wf_lessons.dynamic_linear import DynamicLinear, build_dynamic_linear
from wf_lessons.train import recipe

SMALL = {"img_size": 16, "patch_size": 4, "num_classes": 10, "embed_dim": 16, "depth": 3, "dynamic_blocks": (0, 2)}


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def _twins(**kwargs):
    """Two models built from the same random state: one with ``kwargs``, one zero-prediction."""
    torch.manual_seed(0)
    a = models.WeightFormer(**SMALL, **kwargs)
    torch.manual_seed(0)
    return a, models.WeightFormer(**SMALL, predict="none")


def test_zero_prediction_zeroes_every_prediction_and_keeps_the_network():
    torch.manual_seed(0)
    released = models.WeightFormer(**SMALL)
    torch.manual_seed(0)
    zeroed = models.WeightFormer(**SMALL, predict="none")
    assert models.count_parameters(zeroed) == models.count_parameters(released)
    assert zeroed.state_dict().keys() == released.state_dict().keys()
    assert all(torch.equal(zeroed.state_dict()[k], v) for k, v in released.state_dict().items())  # same init
    x = _images()
    for i, w in models.predicted_weights(zeroed, x).items():
        assert torch.equal(w["linear"], zeroed.blocks[i].linear1.static_weight().expand_as(w["linear"]))
        assert torch.equal(w["dwc"], zeroed.blocks[i].dwc.static_kernel.squeeze(1).expand_as(w["dwc"]))
    assert all(r == {"linear": 0.0, "dwc": 0.0} for r in models.prediction_norm_ratios(zeroed, x).values())
    # the output ignores the predictors completely: scrambling them changes nothing
    before = zeroed(x)
    with torch.no_grad():
        for layer in models.dynamic_layers(zeroed):
            for name, p in layer.named_parameters():
                if name not in ("w", "b"):  # every predictor parameter, not the static weight and bias
                    p.normal_()
    assert torch.equal(zeroed(x), before)
    # while the released network's output does depend on its predictions
    with models.predictions_off(released):
        off = released(x)
    assert torch.allclose(off, before, atol=1e-6) and not torch.allclose(released(x), off, atol=1e-4)


def test_predictions_off_restores_each_layers_setting():
    model = models.WeightFormer(**SMALL, predict="dwc")
    settings = [layer.predicting for layer in models.dynamic_layers(model)]
    assert settings == [True, False, True, False]  # (dwc, linear) of blocks 0 and 2, in module order
    with models.predictions_off(model):
        assert not any(layer.predicting for layer in models.dynamic_layers(model))
    assert [layer.predicting for layer in models.dynamic_layers(model)] == settings


def test_predict_one_kind_switches_only_that_kind():
    for predict, on in (("linear", DynamicLinear), ("dwc", DynamicDWConv)):
        model = models.WeightFormer(**SMALL, predict=predict)
        for layer in models.dynamic_layers(model):
            assert layer.predicting == isinstance(layer, on)
    with pytest.raises(ValueError, match=r"unknown predict 'some'; valid: \['all', 'linear', 'dwc', 'none'\]"):
        models.WeightFormer(**SMALL, predict="some")
    with pytest.raises(ValueError, match="unknown prediction_init 'small'"):
        models.WeightFormer(**SMALL, prediction_init="small")


def test_zero_init_equals_its_zero_prediction_twin_at_init_and_still_learns():
    zero_init, twin = _twins(prediction_init="zero")
    x = _images(8)
    assert torch.allclose(zero_init(x), twin(x), atol=1e-6)
    for ratios in models.prediction_norm_ratios(zero_init, x).values():
        assert ratios == {"linear": 0.0, "dwc": 0.0}
    loss = torch.nn.functional.cross_entropy(zero_init(x), torch.arange(8) % 10)
    loss.backward()
    for block in (zero_init.blocks[0], zero_init.blocks[2]):
        # the zeroed layers receive gradient: the prediction can grow from zero
        assert block.linear1.w2.grad.abs().max() > 0 and torch.isfinite(block.linear1.w2.grad).all()
        assert block.dwc.wfm[-1].weight.grad.abs().max() > 0
    # zeroing both branches of the bilateral product would leave no gradient at all: that is why only one is zeroed
    layer = build_dynamic_linear(16, 64, predictor="bilateral")
    with torch.no_grad():
        layer.w1.zero_()
        layer.w2.zero_()
    layer(torch.randn(2, 16, 16), (4, 4)).sum().backward()  # (B, N, C) tokens on a 4×4 grid
    assert layer.w1.grad.abs().max() == 0 and layer.w2.grad.abs().max() == 0


def test_zero_init_is_refused_where_it_means_nothing():
    with pytest.raises(ValueError, match="predicts nothing"):
        build_dynamic_linear(16, 64, predictor="static").zero_init_prediction()
    with pytest.raises(ValueError, match="normalises the direction"):
        build_dynamic_dwconv(16, predictor="amp_dir").zero_init_prediction()
    for predictor in ("adaptive", "gap", "conv"):
        layer = build_dynamic_dwconv(16, predictor=predictor)
        layer.zero_init_prediction()
        assert layer.dynamic_kernels(torch.randn(2, 16, 8, 8)).abs().max() == 0


def test_the_validation_split_is_stratified_disjoint_and_fixed():
    labels = torch.arange(1000) % 10
    train_idx, val_idx = validation_split(labels, 100)
    assert len(val_idx) == 100 and len(train_idx) == 900
    assert torch.equal(torch.cat([train_idx, val_idx]).sort().values, torch.arange(1000))
    assert torch.bincount(labels[val_idx]).tolist() == [10] * 10
    assert torch.equal(validation_split(labels, 100)[1], val_idx)  # the same split every time
    assert not torch.equal(validation_split(labels, 100, seed=1)[1], val_idx)
    with pytest.raises(ValueError, match="multiple of the 10 classes"):
        validation_split(labels, 105)
    with pytest.raises(ValueError, match="too few to hold out"):
        validation_split(labels, 1000)


def test_a_run_with_a_validation_split_tests_once_and_logs_its_diagnostics():
    (tx, ty), (sx, sy) = _data(n_train=200, n_test=40)
    cfg = train.TrainConfig(model="wf-cifar-quick", epochs=2, batch_size=20, val_images=50, bf16=False,
                            write_log=False, save_checkpoints=False, progress=False,
                            model_overrides={"img_size": 16, "depth": 2, "embed_dim": 16, "dynamic_blocks": (1,)})
    log = train.train(cfg, ((tx, ty), (sx, sy)))
    assert log["data"]["val_images"] == 50 and log["data"]["train_images"] == 150
    assert log["data"]["epoch_eval_split"] == "val"
    for row in log["epochs"]:
        assert {"val_acc", "val_loss"} <= set(row) and "test_acc" not in row and row["eval_images"] == 50
        assert set(row["prediction_norms"]) == {"1"} and set(row["prediction_norms"]["1"]) == {"linear", "dwc"}
        assert all(math.isfinite(v) and v >= 0 for v in row["prediction_norms"]["1"].values())
    assert log["test_images"] == 40 and 0 <= log["test_acc"] <= 1
    assert log["val_acc"] == log["epochs"][-1]["val_acc"]
    assert 0 <= log["val_acc_predictions_off"] <= 1 and log["train_eval_images"] == 150


def test_paired_comparisons_match_scipy_and_holm():
    table = {"a": {"seeds": [0, 1, 2, 3], "test_acc": [0.80, 0.81, 0.79, 0.82]},
             "b": {"seeds": [0, 1, 2, 4], "test_acc": [0.78, 0.80, 0.78, 0.50]},
             "c": {"seeds": [0, 1, 2], "test_acc": [0.70, 0.60, 0.75]}}
    rows = ablate.compare_paired(table, [("a", "b", "one thing"), ("c", "b", "another"), ("a", "z", "missing")])
    assert [(r["treatment"], r["control"]) for r in rows] == [("a", "b"), ("c", "b")]
    first = rows[0]
    assert first["seeds"] == [0, 1, 2]  # paired by seed: seed 3 and 4 have no partner
    assert first["diff_points"] == pytest.approx([2.0, 1.0, 1.0])
    expected = stats.ttest_rel([0.80, 0.81, 0.79], [0.78, 0.80, 0.78])
    assert first["p"] == pytest.approx(expected.pvalue)
    low, high = first["ci95"]
    assert low < first["mean"] < high and first["mean"] == pytest.approx(4 / 3)
    ps = sorted(r["p"] for r in rows)
    holm = sorted(r["p_holm"] for r in rows)
    assert holm[0] == pytest.approx(min(1, 2 * ps[0])) and holm[1] >= holm[0]


@pytest.fixture
def controls(tmp_path, monkeypatch):
    """A controls preset on toy data (a width-16 WeightFormer), logs and checkpoints in tmp_path."""
    runs = tmp_path / "runs"
    monkeypatch.setattr("wf_lessons.config.runs_dir", lambda: runs)
    configs = models.CONFIGS | {"wf-toy": (models.WeightFormer, {**SMALL, "depth": 2, "dynamic_blocks": (1,)})}
    for module in (models, recipe):
        monkeypatch.setattr(module, "CONFIGS", configs)
    monkeypatch.setattr(recipe, "MODEL_NAMES", tuple(configs))
    preset = {"model": "wf-toy", "epochs": 1, "batch_size": 20, "val_images": 50, "bf16": False, "threads": 1}
    monkeypatch.setattr(recipe, "PRESETS", recipe.PRESETS | {"controls-toy": preset})
    monkeypatch.setattr(ablate, "PRESETS", recipe.PRESETS)
    monkeypatch.setattr(ablate, "STUDY_PRESETS", ("controls-toy",))
    return {"runs": runs, "data": _data(n_train=200, n_test=40),
            "settings": {"checkpoint_dir": tmp_path / "ckpt", "device": "cpu"}}


def test_the_sweep_chooses_each_familys_rate_on_validation(controls, capsys):
    assert ablate.main(["--preset", "controls-toy", "--list"]) == 0  # before the sweep: its state, not an error
    out = capsys.readouterr().out
    assert "waits for the learning-rate sweep" in out and "todo     ablation-controls-toy-released-lr0.003-seed0" in out
    with pytest.raises(ValueError, match="0 of 3 runs done; run `python -m wf_lessons.ablate --preset controls-toy "
                                         "--sweep` first"):
        ablate.run("controls-toy", ["released"], [0], progress=False, data=controls["data"], **controls["settings"])
    with pytest.raises(ValueError, match="do not pass variants or seeds"):
        ablate.run("controls-toy", ["released"], sweep=True)
    summary = ablate.run("controls-toy", sweep=True, progress=False, data=controls["data"], **controls["settings"])
    names = sorted(p.stem for p in controls["runs"].glob("ablation-controls-toy-*.json"))
    assert names == sorted(ablate.run_name("controls-toy", v, 0, lr) for v, lr in ablate.sweep_runs("controls-toy"))
    for variant, rates in summary["lr_sweep"].items():
        assert set(ablate.LR_SWEEP) <= {float(lr) for lr in rates}  # the first grid, and any growth past an edge
        best = max(rates.items(), key=lambda item: (item[1], -float(item[0])))[0]
        assert f"{ablate.chosen_lr('controls-toy', variant):g}" == best
        edge = best in (min(rates, key=float), max(rates, key=float))
        assert not edge or len(rates) == len(ablate.LR_SWEEP) + ablate.MAX_LR_EXTENSIONS
    cfg = ablate.config("controls-toy", "zero-init", 1)  # the weightformer family follows "released"
    assert cfg.lr == ablate.chosen_lr("controls-toy", "released")
    assert cfg.run_name == f"ablation-controls-toy-zero-init-lr{cfg.lr:g}-seed1"


def _forge_sweep(runs, variant: str, results: dict) -> None:
    """Sweep logs of ``variant`` with the given final validation accuracy per rate (None: diverged)."""
    runs.mkdir(parents=True, exist_ok=True)
    for lr, acc in results.items():
        name = ablate.run_name("controls-toy", variant, 0, lr)
        log = {"run_name": name, "seed": 0, "complete": acc is not None, "diverged": None if acc else "nan",
               "val_acc": acc}
        (runs / f"{name}.json").write_text(json.dumps(log))


def test_the_sweep_grows_past_an_edge_until_the_best_rate_is_bracketed(controls):
    _forge_sweep(controls["runs"], "released", {1.5e-3: 0.70, 3e-3: 0.72, 6e-3: 0.75})  # best at the top edge
    assert (("released", 1.2e-2) in ablate.sweep_runs("controls-toy"))
    with pytest.raises(ValueError, match="3 of 4 runs done"):
        ablate.chosen_lr("controls-toy", "released")
    _forge_sweep(controls["runs"], "released", {1.2e-2: 0.74})  # worse than 6e-3: bracketed, the sweep stops
    assert ablate.chosen_lr("controls-toy", "slot-static") == 6e-3
    assert ("released", 2.4e-2) not in ablate.sweep_runs("controls-toy")
    _forge_sweep(controls["runs"], "all-static", {1.5e-3: 0.80, 3e-3: 0.78, 6e-3: None})  # best at the bottom
    assert ("all-static", 7.5e-4) in ablate.sweep_runs("controls-toy")
    _forge_sweep(controls["runs"], "all-static", {7.5e-4: 0.81})  # better again: one more step down, then it stops
    assert ("all-static", 3.75e-4) in ablate.sweep_runs("controls-toy")
    _forge_sweep(controls["runs"], "all-static", {3.75e-4: 0.82})
    assert len([r for v, r in ablate.sweep_runs("controls-toy") if v == "all-static"]) == 5  # at most 2 extensions
    assert ablate.chosen_lr("controls-toy", "all-static") == 3.75e-4
    assert ablate.sweep_table("controls-toy")["all-static"]["0.006"] is None  # diverged: shown, never chosen


def test_summary_pairs_by_seed_and_counts_only_the_grids_own_logs(controls):
    settings = {"progress": False, "data": controls["data"], **controls["settings"]}
    ablate.run("controls-toy", sweep=True, **settings)
    summary = ablate.run("controls-toy", ["released", "zero-prediction", "all-static"], [0, 1], **settings)
    table = summary["variants"]
    assert table["released"]["seeds"] == [0, 1] and "val_acc_predictions_off" in table["released"]
    assert "val_acc_predictions_off" not in table["all-static"]  # nothing to switch off
    pairs = {(c["treatment"], c["control"]) for c in summary["comparisons"]}
    assert pairs == {("released", "all-static"), ("released", "zero-prediction")}
    assert all("p_holm" in c or c["p"] != c["p"] for c in summary["comparisons"])
    # a copied log is not a third seed
    lr = table["released"]["lr"]
    source = controls["runs"] / f"{ablate.run_name('controls-toy', 'released', 0, lr)}.json"
    (controls["runs"] / f"{ablate.run_name('controls-toy', 'released', '0-backup', lr)}.json").write_text(
        source.read_text())
    assert ablate.summarize("controls-toy")["released"]["seeds"] == [0, 1]


def test_precision_checks_train_in_float32_at_their_controls_rate_and_only_when_named(controls):
    settings = {"progress": False, "data": controls["data"], **controls["settings"]}
    ablate.run("controls-toy", sweep=True, **settings)
    cfg = ablate.config("controls-toy", "released-fp32", 0)
    assert cfg.bf16 is False and cfg.lr == ablate.chosen_lr("controls-toy", "released")
    assert cfg.model_overrides == ablate.config("controls-toy", "released", 0).model_overrides
    selected = {variant for variant, _, _ in ablate._select("controls-toy", None, [0])}
    assert selected == set(ablate.CONTROLS)  # the checks are not in the default selection
    assert {v for v, _, _ in ablate._select("controls-toy", ["released-fp32"], [0])} == {"released-fp32"}


def test_run_names_with_a_learning_rate_are_read_by_name(controls):
    name = ablate.run_name("controls-toy", "released", 0, 3e-3)  # "...-lr0.003-seed0": a dot, not a suffix
    controls["runs"].mkdir(parents=True)
    (controls["runs"] / f"{name}.json").write_text(json.dumps({"run_name": name}))
    assert runlog.read(name)["run_name"] == name


def test_the_forest_plot_colours_only_what_holds_after_the_correction():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{"treatment": "a", "control": "b", "metric": "test_acc", "seeds": [0, 1], "diff_points": [1.0, 2.0],
             "mean": 1.5, "ci95": [0.5, 2.5], "p": 0.01, "p_holm": 0.02},
            {"treatment": "c", "control": "b", "metric": "test_acc", "seeds": [0, 1], "diff_points": [1.0, 1.2],
             "mean": 1.1, "ci95": [0.2, 2.0], "p": 0.03, "p_holm": 0.06}]  # excludes zero, fails Holm
    ax = ablate.plot_comparisons(rows, "t")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["c − b", "a − b"]  # top to bottom as given
    diamonds = [line for line in ax.lines if line.get_marker() == "D"]
    assert [d.get_color() for d in diamonds] == ["0.35", "tab:blue"]
    assert any("Holm p = 0.060, n = 2" in t.get_text() for t in ax.texts)
    with pytest.raises(ValueError, match="no comparisons to plot"):
        ablate.plot_comparisons([], "t")
    plt.close("all")


def test_a_growing_sweep_trains_each_new_rate_once_and_stops(controls, monkeypatch):
    _forge_sweep(controls["runs"], "released", {1.5e-3: 0.70, 3e-3: 0.72})  # 6e-3 still to train
    _forge_sweep(controls["runs"], "all-static", {1.5e-3: 0.70, 3e-3: 0.80, 6e-3: 0.75})  # bracketed
    outcome = {6e-3: 0.75, 1.2e-2: 0.74}  # 6e-3 wins at the edge, so the sweep grows; 1.2e-2 is worse: it stops
    trained, rounds = [], []
    real_train_each = ablate._train_each

    def counting(*args, **kwargs):
        rounds.append(args[1])
        if len(rounds) > 4:
            raise AssertionError(f"the sweep keeps going round: {rounds}")
        return real_train_each(*args, **kwargs)

    def fake_train(cfg, data=None):
        trained.append(cfg.lr)
        _forge_sweep(controls["runs"], "released", {cfg.lr: outcome[cfg.lr]})
        return {"test_acc": 0.5, "wall_s": 0.0}

    monkeypatch.setattr(ablate, "_train_each", counting)
    monkeypatch.setattr(ablate, "train", fake_train)
    monkeypatch.setattr(ablate, "write_summary", lambda preset: {})  # the forged logs hold no test accuracy
    ablate.run("controls-toy", sweep=True, progress=False, **controls["settings"])
    assert trained == [6e-3, 1.2e-2] and ablate.chosen_lr("controls-toy", "released") == 6e-3
    assert [[t[2] for t in r if t[0] == "released"] for r in rounds] == [[1.5e-3, 3e-3, 6e-3], [1.2e-2]]


def test_the_printed_summary_names_a_diverged_rate(capsys):
    ablate.print_summary({"variants": {}, "lr_sweep": {"released": {"0.003": 0.7, "0.006": None}}})
    assert "lr sweep, released: 0.003: val 0.7000, 0.006: diverged" in capsys.readouterr().out


def test_a_regime_trains_released_zero_init_and_the_control_best_on_validation(controls, monkeypatch, capsys):
    long = {**recipe.PRESETS["controls-toy"], "epochs": 2}
    monkeypatch.setattr(recipe, "PRESETS", recipe.PRESETS | {"controls-toy-long": long})
    monkeypatch.setattr(ablate, "PRESETS", recipe.PRESETS)
    monkeypatch.setattr(ablate, "STUDY_PRESETS", ("controls-toy", "controls-toy-long"))
    monkeypatch.setattr(ablate, "REGIMES", {"controls-toy-long": "twice the schedule"})
    monkeypatch.setattr(ablate, "LR_FROM", {"controls-toy-long": "controls-toy"})
    _forge_sweep(controls["runs"], "released", {1.5e-3: 0.70, 3e-3: 0.72, 6e-3: 0.71})
    _forge_sweep(controls["runs"], "all-static", {1.5e-3: 0.70, 3e-3: 0.80, 6e-3: 0.75})
    # the long study's controls: slot-static is best on validation and worst on test (the test set never chooses)
    table = {"all-static": {"seeds": [0, 1, 2, 3, 4], "val_acc": [0.80] * 5, "test_acc": [0.90] * 5},
             "slot-static": {"seeds": [0, 1, 2, 3], "val_acc": [0.83] * 4, "test_acc": [0.70] * 4},
             "zero-prediction": {"seeds": [0, 1, 2, 3, 4], "val_acc": [0.82] * 5, "test_acc": [0.95] * 5}}
    real_summarize = ablate.summarize
    monkeypatch.setattr(ablate, "summarize", lambda preset: table if preset == "controls-toy"
                        else real_summarize(preset))
    with pytest.raises(ablate.ControlNotChosen, match="not finished yet: slot-static; run `python -m wf_lessons."
                                                      "ablate --preset controls-toy --variants slot-static` first"):
        ablate.best_control("controls-toy")
    assert ablate.main(["--preset", "controls-toy-long", "--list"]) == 0  # what can run meanwhile
    out = capsys.readouterr().out
    assert "the control waits" in out and "todo     ablation-controls-toy-long-zero-init-lr0.003-seed2" in out
    settings = {"progress": False, "data": controls["data"], **controls["settings"]}
    # a regime summary written before the control is chosen compares only what it can: zero-init - released
    early = ablate.run("controls-toy-long", ["released", "zero-init", "zero-prediction"], [0, 1], **settings)
    assert [(c["treatment"], c["control"]) for c in early["comparisons"]] == [("zero-init", "released")]
    table["slot-static"] = {"seeds": [0, 1, 2, 3, 4], "val_acc": [0.84, 0.84, 0.84, 0.84, 0.75],
                            "test_acc": [0.70] * 5}  # mean 0.822: just above zero-prediction's 0.82
    assert ablate.control_scores("controls-toy")["slot-static"] == pytest.approx(0.822)
    assert ablate.best_control("controls-toy") == "slot-static"
    assert ablate._select("controls-toy-long", None, None) == [
        (v, s, 3e-3) for s in ablate.REGIME_SEEDS for v in ("released", "zero-init", "slot-static")]
    summary = ablate.run("controls-toy-long", None, [0, 1], **settings)
    assert set(summary["variants"]) == {"released", "zero-init", "slot-static", "zero-prediction"}
    assert all(len(g["epochs"]) == 2 for g in map(runlog.read, summary["variants"]["released"]["runs"]))
    # the comparisons are with the chosen control only (zero-prediction was trained, but is not it)
    pairs = [(c["treatment"], c["control"]) for c in summary["comparisons"]]
    assert pairs == [("released", "slot-static"), ("zero-init", "slot-static"), ("zero-init", "released")]
    assert summary["comparisons"][0]["differs"].startswith("the prediction and the released layers' init")
    valid = [c["p"] for c in summary["comparisons"] if c["p"] == c["p"]]
    assert len(valid) == 3  # Holm over the regime's own three
    assert [c["p_holm"] for c in summary["comparisons"]] == pytest.approx(
        list(multipletests(valid, method="holm")[1]))


def test_the_schedule_change_is_the_late_paired_difference_minus_the_early_one():
    early = {"a": {"seeds": [0, 1, 2], "test_acc": [0.50, 0.52, 0.51]},
             "b": {"seeds": [0, 1, 2, 3], "test_acc": [0.48, 0.49, 0.50, 0.40]},
             "only-early": {"seeds": [0, 1], "test_acc": [0.1, 0.2]}}
    late = {"a": {"seeds": [0, 1, 2], "test_acc": [0.78, 0.79, 0.80]},
            "b": {"seeds": [1, 2, 3], "test_acc": [0.81, 0.80, 0.79]}}  # seed 0 missing late: pairs over 1 and 2
    (row,) = ablate.schedule_change(early, late, [("a", "b", "x"), ("a", "only-early", "y")])
    expected = [100 * ((0.79 - 0.52) - (0.81 - 0.49)), 100 * ((0.80 - 0.51) - (0.80 - 0.50))]
    assert row["seeds"] == [1, 2] and row["diff_points"] == pytest.approx(expected)
    assert row["ci95"] == pytest.approx(list(stats.ttest_1samp(expected, 0).confidence_interval(0.95)))

"""The controlled study's committed run logs (``data/runs/ablation-controls-*-seed*.json``) are what chapter 08 and
the README say they are: a validation split held out of the training images, validation accuracy and (for a network
with dynamic blocks) each block's prediction sizes after every epoch, the test set evaluated once at the end, from
committed code, with no absolute path."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOGS = sorted((ROOT / "data" / "runs").glob("ablation-controls-*-seed*.json"))


def test_there_are_study_logs():
    assert LOGS, "no committed run log of the controlled study"


@pytest.mark.parametrize("path", LOGS, ids=[p.stem for p in LOGS])
def test_a_study_log_holds_out_validation_and_tests_once(path):
    text = path.read_text(encoding="utf-8")
    log = json.loads(text)
    if not log.get("complete"):
        assert log.get("diverged"), "a committed study log is complete or says why it stopped"
        return
    assert log["run_name"] == path.stem and f"-lr{log['config']['lr']:g}-seed{log['seed']}" in path.stem
    data = log["data"]
    assert (data["train_images"], data["val_images"], data["test_images"]) == (45000, 5000, 10000)
    assert data["epoch_eval_split"] == "val" and log["test_images"] == 10000
    assert len(log["epochs"]) == log["config"]["epochs"] and 0 < log["test_acc"] < 1
    dynamic = log["model_overrides"].get("dynamic_blocks") != []
    for epoch in log["epochs"]:
        assert 0 < epoch["val_acc"] < 1 and epoch["eval_images"] == 5000
        assert not any("test" in key for key in epoch), "the test set is evaluated once, at the end"
        if dynamic:
            assert epoch["prediction_norms"] and all(set(r) == {"linear", "dwc"}
                                                     for r in epoch["prediction_norms"].values())
    assert log["val_acc"] == log["epochs"][-1]["val_acc"]
    assert ("val_acc_predictions_off" in log) == dynamic and 0 < log["train_eval_acc"] <= 1
    assert re.fullmatch(r"[0-9a-f]{40}", log["git_commit"]) and log["git_dirty"] == []
    assert not re.search(r'(?<![\w.$~-])/(?:home|root|tmp|work|Users|mnt|var)/', text), "an absolute path in a log"

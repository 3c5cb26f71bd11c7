import pytest
import torch

from wf_lessons import config


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False), ("", False)])
def test_quick_reads_wf_quick(monkeypatch, value, expected):
    monkeypatch.setenv("WF_QUICK", value)
    assert config.quick() is expected


def test_quick_rejects_typos(monkeypatch):
    monkeypatch.setenv("WF_QUICK", "yes please")
    with pytest.raises(ValueError, match="WF_QUICK"):
        config.quick()


def test_data_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("WF_DATA_DIR", raising=False)
    assert config.data_dir() == config.REPO_ROOT / "data"
    monkeypatch.setenv("WF_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path.resolve()


def test_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.delenv("WF_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert config.device().type == expected


def test_device_refuses_missing_cuda(monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        config.device("cuda")


def test_seed_everything_is_reproducible():
    g = config.seed_everything(3)
    a, ga = torch.rand(4), torch.rand(4, generator=g)
    g = config.seed_everything(3)
    assert torch.equal(a, torch.rand(4)) and torch.equal(ga, torch.rand(4, generator=g))
    with pytest.raises(ValueError):
        config.seed_everything(-1)

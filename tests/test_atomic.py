import os

import pytest
import torch

from wf_lessons import atomic


def test_atomic_path_replaces_the_file_on_success(tmp_path):
    target = tmp_path / "sub" / "file.txt"
    with atomic.atomic_path(target) as tmp:
        tmp.write_text("new")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_text() == "new" and list(target.parent.iterdir()) == [target]
    assert target.stat().st_mode & 0o777 == 0o644


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_torch_save_round_trip(tmp_path):
    atomic.torch_save({"x": torch.arange(3)}, tmp_path / "a.pt")
    assert torch.equal(torch.load(tmp_path / "a.pt")["x"], torch.arange(3))


def test_claim_is_exclusive_and_removes_only_its_own_file(tmp_path):
    lock = atomic.claim_path(tmp_path / "run.json")
    assert lock == tmp_path / "run.wf-claim"
    with atomic.claim(lock, "run 'run'"):
        assert lock.read_text().startswith(atomic.CLAIM_MAGIC)
        with pytest.raises(atomic.ClaimedError, match=r"run 'run' is in use by another process \(PID \d+"):
            with atomic.claim(lock, "run 'run'"):
                pass
    assert list(tmp_path.iterdir()) == []
    with atomic.claim(lock, "run 'run'"):
        (tmp_path / "other").write_text("someone else's")
        (tmp_path / "other").replace(lock)  # the name now holds a file this claim did not create
    assert lock.read_text() == "someone else's"


def test_a_stale_claim_is_taken_over_and_anything_else_left_alone(tmp_path):
    lock = tmp_path / "run.wf-claim"
    lock.write_text(f"{atomic.CLAIM_MAGIC}\npid 999999\n")  # left by a process killed with -9: no lock on it
    with atomic.claim(lock, "x"):
        assert lock.read_text() == f"{atomic.CLAIM_MAGIC}\npid {os.getpid()}\n"
    assert list(tmp_path.iterdir()) == []
    for content in ("", "pid 1\n", "uv lock file\n"):
        lock.write_text(content)
        with pytest.raises(FileExistsError, match="is not a claim of wf_lessons: it was left alone"):
            with atomic.claim(lock, "x"):
                pass
        assert lock.read_text() == content
    lock.unlink()
    lock.mkdir()
    with pytest.raises(FileExistsError, match="is not a regular file"):
        with atomic.claim(lock, "x"):
            pass

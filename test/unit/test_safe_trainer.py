"""SafeTrainer pieces: atomic saves and link updates, resume fallback, one-line refusal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from espnet2.train.reporter import Reporter

from dispatch.tasks.enh_distill import EnhDistillTask
from dispatch.tasks.trainer import (PREVIOUS_CHECKPOINT, ResumeError, SafeTrainer, atomic_saves,
                                    remove_stale_temporaries)


def test_the_task_uses_the_safe_trainer():
    assert EnhDistillTask.trainer is SafeTrainer


def test_saves_and_links_are_atomic(tmp_path):
    target = tmp_path / "1epoch.pth"
    with atomic_saves(tmp_path):
        torch.save({"w": torch.ones(3)}, target)
        link = tmp_path / "latest.pth"
        link.symlink_to("1epoch.pth")
        torch.save({"w": torch.zeros(3)}, tmp_path / "2epoch.pth")
        # ESPnet's update: unlink, then symlink_to; the old link must survive the unlink
        link.unlink()
        assert link.is_symlink() and os.readlink(link) == "1epoch.pth"
        link.symlink_to("2epoch.pth")
        assert os.readlink(link) == "2epoch.pth"
        # a link that is unlinked and not re-made goes away at the end
        (tmp_path / "old.pth").symlink_to("1epoch.pth")
        (tmp_path / "old.pth").unlink()
        # checkpoint.pth keeps its predecessor
        torch.save({"epoch": 1}, tmp_path / "checkpoint.pth")
        torch.save({"epoch": 2}, tmp_path / "checkpoint.pth")
    assert not (tmp_path / "old.pth").is_symlink()
    assert torch.load(tmp_path / PREVIOUS_CHECKPOINT)["epoch"] == 1
    assert torch.load(tmp_path / "checkpoint.pth")["epoch"] == 2
    assert torch.equal(torch.load(link)["w"], torch.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    # outside the block torch.save and Path.unlink are the originals again
    link.unlink()
    assert not link.exists() and not link.is_symlink()


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / ".checkpoint.pth.abc.tmp").write_bytes(b"half")
    (tmp_path / "keep.pth").write_bytes(b"x")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [".checkpoint.pth.abc.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.pth"]


def _training_state(tmp_path: Path, epoch: int):
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    reporter = Reporter()
    reporter.set_epoch(epoch)
    return model, optimizer, reporter


def _resume(checkpoint: Path, model, optimizer):
    reporter = Reporter()
    SafeTrainer.resume(checkpoint=checkpoint, model=model, reporter=reporter,
                       optimizers=[optimizer], schedulers=[None], scaler=None)
    return reporter


def test_unloadable_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    model, optimizer, reporter = _training_state(tmp_path, 3)
    state = {"model": model.state_dict(), "reporter": reporter.state_dict(),
             "optimizers": [optimizer.state_dict()], "schedulers": [None], "scaler": None}
    torch.save(state, tmp_path / PREVIOUS_CHECKPOINT)
    torch.save(model.state_dict(), tmp_path / "3epoch.pth")
    (tmp_path / "checkpoint.pth").write_bytes(b"")  # what a killed plain torch.save leaves
    fresh = torch.nn.Linear(2, 1)
    with caplog.at_level("WARNING"):
        resumed = _resume(tmp_path / "checkpoint.pth", fresh, torch.optim.SGD(fresh.parameters(), lr=0.1))
    assert resumed.get_epoch() == 3
    assert torch.equal(fresh.weight, model.weight)
    lines = [r.getMessage() for r in caplog.records if "cannot be loaded" in r.getMessage()]
    assert len(lines) == 1 and "checkpoint.pth" in lines[0] and PREVIOUS_CHECKPOINT in lines[0]
    assert os.readlink(tmp_path / "latest.pth") == "3epoch.pth"


def test_nothing_loadable_says_what_to_run(tmp_path):
    (tmp_path / "checkpoint.pth").write_bytes(b"")
    torch.save({"w": torch.ones(1)}, tmp_path / "2epoch.pth")
    model = torch.nn.Linear(2, 1)
    with pytest.raises(ResumeError) as err:
        _resume(tmp_path / "checkpoint.pth", model, torch.optim.SGD(model.parameters(), lr=0.1))
    message = str(err.value)
    assert "\n" not in message and "checkpoint.pth cannot be loaded" in message
    assert f"mv {tmp_path}/checkpoint.pth" in message and f"--init_param {tmp_path}/2epoch.pth" in message


def test_enh_train_uses_the_safe_trainer_too():
    from espnet2.tasks.enh import EnhancementTask

    from dispatch.tasks.enh import SafeEnhancementTask

    assert SafeEnhancementTask.trainer is SafeTrainer and issubclass(SafeEnhancementTask, EnhancementTask)

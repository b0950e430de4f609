"""Voting teachers: vote rules on hand-made logits, the T²-scaled KL, and snapshot independence."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sdnas_deploy.errors import BadInputError
from sdnas_deploy.methods.sd.teachers import VotingTeachers, distill_loss, hard_vote, soft_vote


class _FixedLogits(nn.Module):
    """A 'teacher' whose logits are a stored table (row i for sample i)."""

    def __init__(self, logits: list[list[float]]) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.tensor(logits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[: x.shape[0]]


def _probs(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows)


def test_soft_vote_is_the_mean() -> None:
    probs = torch.stack([_probs([[0.7, 0.2, 0.1]]), _probs([[0.1, 0.8, 0.1]]), _probs([[0.4, 0.4, 0.2]])])
    assert torch.allclose(soft_vote(probs), torch.tensor([[0.4, 1.4 / 3, 0.4 / 3]]))


def test_hard_vote_picks_majority_and_averages_the_agreeing_teachers() -> None:
    # sample 0: teachers 0 and 2 vote class 0, teacher 1 votes class 1 (confidently)
    # sample 1: all three vote class 2
    probs = torch.stack([
        _probs([[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]),
        _probs([[0.05, 0.9, 0.05], [0.2, 0.2, 0.6]]),
        _probs([[0.5, 0.4, 0.1], [0.0, 0.3, 0.7]]),
    ])
    voted = hard_vote(probs)
    assert torch.allclose(voted[0], torch.tensor([0.55, 0.35, 0.1]))
    assert torch.allclose(voted[1], probs[:, 1].mean(dim=0))
    assert voted[0].argmax() == 0 and soft_vote(probs)[0].argmax() == 1  # the vote overrules one loud teacher
    assert torch.allclose(voted.sum(dim=1), torch.ones(2))


def test_hard_vote_tie_falls_back_to_soft() -> None:
    probs = torch.stack([_probs([[0.9, 0.1]]), _probs([[0.3, 0.7]])])
    assert torch.allclose(hard_vote(probs), soft_vote(probs))


def test_teacher_probs_use_temperature_and_vote_rule() -> None:
    logits = [[[2.0, 0.0, 0.0]], [[0.0, 3.0, 0.0]], [[1.0, 0.0, 0.0]]]
    x = torch.zeros(1, 1)
    for vote in ("soft", "hard"):
        teachers = VotingTeachers(k=3, interval=1, vote=vote, temperature=2.0)
        for table in logits:
            teachers.snapshot(_FixedLogits(table))
        softened = torch.stack([F.softmax(torch.tensor(t) / 2.0, dim=1) for t in logits])
        expected = softened.mean(dim=0) if vote == "soft" else softened[[0, 2]].mean(dim=0)
        assert torch.allclose(teachers.teacher_probs(x), expected)


def test_distill_loss_zero_when_equal_and_scaled_by_t_squared() -> None:
    student = torch.tensor([[1.0, -0.5, 2.0], [0.3, 0.3, -1.0]])
    for temperature in (1.0, 2.0, 4.0):
        same = F.softmax(student / temperature, dim=1)
        assert distill_loss(student, same, temperature).abs() < 1e-6
    teacher = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2]])
    log_q = F.log_softmax(student / 3.0, dim=1)
    kl = (teacher * (teacher.log() - log_q)).sum(dim=1).mean()
    assert math.isclose(float(distill_loss(student, teacher, 3.0)), 9.0 * float(kl), rel_tol=1e-5)
    assert float(distill_loss(student, teacher, 3.0)) > 0


def test_snapshots_are_frozen_independent_copies_in_a_ring_buffer() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    teachers = VotingTeachers(k=2, interval=3, vote="soft", temperature=1.0)
    taken = []
    for step in range(1, 10):
        with torch.no_grad():
            model[0].bias.fill_(float(step))  # mark the model with the step number
        if teachers.observe_step(model):
            taken.append(step)
    assert taken == [3, 6, 9]
    assert len(teachers) == 2
    assert [float(t[0].bias[0]) for t in teachers.snapshots] == [6.0, 9.0]  # oldest (3) dropped
    with torch.no_grad():
        model[0].bias.fill_(-1.0)
    assert float(teachers.snapshots[-1][0].bias[0]) == 9.0
    assert all(not p.requires_grad for t in teachers.snapshots for p in t.parameters())
    running = teachers.snapshots[0][1].running_mean.clone()
    teachers.teacher_probs(torch.randn(4, 2))
    assert torch.equal(running, teachers.snapshots[0][1].running_mean)  # teachers never drift


def test_state_dict_roundtrip_through_safe_load() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    teachers = VotingTeachers(k=3, interval=1, vote="hard", temperature=2.0)
    for _ in range(4):
        with torch.no_grad():
            model[0].weight.add_(torch.randn(3, 2))
        teachers.observe_step(model)
    buf = io.BytesIO()
    torch.save(teachers.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    restored = VotingTeachers(k=3, interval=1, vote="hard", temperature=2.0)
    restored.load_state_dict(state, template=model)
    x = torch.randn(5, 2)
    assert restored.steps_seen == 4 and len(restored) == 3
    assert torch.equal(restored.teacher_probs(x), teachers.teacher_probs(x))


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(BadInputError):
        VotingTeachers(k=0, interval=1)
    with pytest.raises(BadInputError):
        VotingTeachers(k=1, interval=1, vote="median")  # type: ignore[arg-type]


# ---- cached teachers (teachers_from: cache) --------------------------------------------------------------

from sdnas_deploy.methods.sd.cache import CachedTeachers, masked_vote  # noqa: E402


def test_masked_vote_equals_the_plain_votes_when_every_teacher_is_there() -> None:
    probs = torch.softmax(torch.randn(3, 5, 4), dim=2)
    seen = torch.ones(3, 5, dtype=torch.bool)
    assert torch.allclose(masked_vote(probs, seen, "soft"), soft_vote(probs))
    assert torch.allclose(masked_vote(probs, seen, "hard"), hard_vote(probs))
    seen[0] = False  # teacher 0 missing: the vote is over teachers 1 and 2 only
    assert torch.allclose(masked_vote(probs, seen, "soft"), soft_vote(probs[1:]))
    assert torch.allclose(masked_vote(probs, seen, "hard"), hard_vote(probs[1:]))


def test_cached_teachers_vote_over_the_previous_k_epochs_of_each_sample() -> None:
    cache = CachedTeachers(k=2, samples=4, classes=3, vote="soft", temperature=1.0)
    logits = {e: torch.randn(4, 3) for e in range(4)}
    cache.start_epoch(0)
    assert len(cache) == 0
    probs, have = cache.teacher_probs(torch.arange(4), torch.device("cpu"))
    assert not have.any()
    for epoch in range(4):
        cache.start_epoch(epoch)
        if epoch == 3:
            break
        seen = torch.tensor([0, 1, 2]) if epoch == 1 else torch.arange(4)  # sample 3 skipped in epoch 1
        cache.record(seen, logits[epoch][seen])
    assert len(cache) == 2  # epochs 1 and 2 teach epoch 3; epoch 0 has left the ring
    probs, have = cache.teacher_probs(torch.tensor([0, 3]), torch.device("cpu"))
    expected0 = (F.softmax(logits[1][0], 0) + F.softmax(logits[2][0], 0)) / 2
    assert have.all()
    assert torch.allclose(probs[0], expected0, atol=2e-3)  # float16 records
    assert torch.allclose(probs[1], F.softmax(logits[2][3], 0), atol=2e-3)  # only epoch 2 saw sample 3


def test_cached_teachers_state_round_trip_and_mismatch() -> None:
    cache = CachedTeachers(k=2, samples=4, classes=3)
    cache.start_epoch(0)
    cache.record(torch.arange(4), torch.randn(4, 3))
    buffer = io.BytesIO()
    torch.save(cache.state_dict(), buffer)
    buffer.seek(0)
    restored = CachedTeachers(k=2, samples=4, classes=3)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(restored.probs, cache.probs) and restored.epoch == 0
    with pytest.raises(ValueError, match="shape"):
        CachedTeachers(k=2, samples=5, classes=3).load_state_dict(cache.state_dict())


def test_channels_last_teachers_predict_what_the_supernet_predicted() -> None:
    """Snapshots run channels-last (a faster forward); fresh, recycled and restored ones predict the supernet's
    own softened probabilities at snapshot time, to float rounding."""
    from sdnas_deploy.spaces.darts.supernet import SearchNetwork

    torch.manual_seed(0)
    model = SearchNetwork(4, 10, 3, in_channels=1).train()
    x = torch.randn(8, 1, 12, 12)
    teachers = VotingTeachers(k=1, interval=1, vote="soft", temperature=2.0)
    for _ in range(2):  # the second snapshot recycles the first module
        with torch.no_grad():
            for p in model.weight_parameters():
                p.add_(0.05 * torch.randn_like(p))
            expected = F.softmax(model(x) / 2.0, dim=1)
        teachers.snapshot(model)
        teacher = teachers.snapshots[-1]
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in teacher.parameters() if p.dim() == 4)
        torch.testing.assert_close(teachers.teacher_probs(x), expected, rtol=1e-4, atol=1e-5)
    restored = VotingTeachers(k=1, interval=1, vote="soft", temperature=2.0)
    restored.load_state_dict(teachers.state_dict(), template=model)
    torch.testing.assert_close(restored.teacher_probs(x), expected, rtol=1e-4, atol=1e-5)

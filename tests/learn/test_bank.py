"""The bank of fast learners and the concept memory (streammeta.learn.bank, .memory): robust to
false alarms and missed switches, recalls a concept seen before, opens tasks from the members'
lead, continues exactly from a snapshot."""

from pathlib import Path

import numpy as np
import pytest
import torch

from streammeta.config import load_config
from streammeta.learn.bank import BankLearner
from streammeta.learn.factory import build_learner
from streammeta.learn.learner import MetaLearner
from streammeta.learn.memory import ConceptMemory
from streammeta.learn.model import MLP, Classification, FunctionalModel, Regression
from streammeta.runtime.prequential import predict_then_learn, run_prequential
from streammeta.segment.base import LossJump

SLOPES = (3.0, -3.0, 0.5)  # three concepts y = slope * x + offset, on raw units


def _bank(**kw: object) -> BankLearner:
    model = FunctionalModel(MLP(1, 1, hidden=(16,)), Regression())
    options: dict[str, object] = {"support_size": 5, "seed": 0, "meta_batch": 4, **kw}
    return BankLearner(model, **options)  # type: ignore[arg-type]


def _records(concepts: list[int], length: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Tasks of ``length`` records, task i under concept ``concepts[i]``; x in [-50, 50]."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-50, 50, (len(concepts) * length, 1)).astype(np.float32)
    slope = np.repeat([SLOPES[c] for c in concepts], length)
    y = (slope * x[:, 0] + 100 + rng.normal(0, 1, len(x))).astype(np.float32)
    return x, y, np.repeat(np.arange(len(concepts)), length)


def _feed(learner: BankLearner, x: np.ndarray, y: np.ndarray, **kw: object) -> list[int]:
    """Micro-batches of 5; returns the records where tasks opened."""
    opened = []
    for s in range(0, len(x), 5):
        xt, yt = torch.from_numpy(x[s : s + 5]), torch.from_numpy(y[s : s + 5])
        learner.update(xt, yt, **{k: v(s) for k, v in kw.items()})  # type: ignore[operator]
        opened += [s + c for c in learner.opened]
    return opened


def test_the_config_builds_a_bank_by_default_and_one_learner_with_bank_size_1() -> None:
    cfg = load_config(env={}).learner
    assert type(build_learner(cfg)) is BankLearner
    assert type(build_learner(cfg, bank_size=1)) is MetaLearner
    with pytest.raises(ValueError, match="bank_size"):
        _bank(bank_size=1)


def test_a_false_alarm_costs_little_and_opens_no_task() -> None:
    """One concept throughout; a detector fires at record 500. The long-lived member keeps
    the lead: no task opens and the loss after the alarm stays at the level without it."""
    x, y, _ = _records([0], 1000)
    plain, alarmed = _bank(spawn_every=0), _bank(spawn_every=0)
    _feed(plain, x, y)
    opened = _feed(alarmed, x, y, candidates=lambda s: [0] if s == 500 else [])
    assert opened == []
    assert alarmed.counts["candidates_detector"] == 1
    after = slice(500, 600)
    for name, learner in (("plain", plain), ("alarmed", alarmed)):
        learner.predict(torch.from_numpy(x[after]), torch.from_numpy(y[after]))
        if name == "plain":
            level = float(learner.loss.mean())
        else:
            assert float(learner.loss.mean()) <= 1.1 * level + 1e-3


def test_a_missed_switch_costs_at_most_the_schedule() -> None:
    """No detector at all: a switch at record 1000 is found by a fresh member started on the
    schedule, which takes the lead and opens a task within schedule + confirm records."""
    x, y, _ = _records([0, 1], 1000)
    bank = _bank(spawn_every=100, confirm=30)
    opened = _feed(bank, x, y)
    after = [o for o in opened if o >= 1000]
    assert after and after[0] <= 1000 + 100 + 30 + 50, opened
    bank.predict(torch.from_numpy(x[-50:]), torch.from_numpy(y[-50:]))
    assert float(bank.loss.mean()) < 25.0  # y spans +-150: recovered


def test_a_concept_seen_before_is_recalled_and_predicted_well_at_once() -> None:
    """Concepts A, B, A with told switches: when A returns, its stored weights join after one
    step's records (5) and lead; from the 10th record on the loss over A's first 100 records
    on its return is at most a fifth of the loss over them at its first appearance."""
    x, y, task = _records([0, 1, 0], 1000)
    bank = _bank(spawn_every=0)
    res = run_prequential(bank, x, y, task, 5, first_task_is_new=True)
    first = float(np.mean(res.loss[10:100]))
    returned = float(np.mean(res.loss[2010:2100]))
    assert returned <= first / 5, (first, returned)
    assert bank.counts["recalls"] >= 1 and bank.counts["recall_hits"] >= 1
    assert bank.counts["boundaries_explicit"] == 3
    # without memory the return is learned again from the initialization
    forgetful = run_prequential(_bank(spawn_every=0, memory_size=0), x, y, task, 5,
                                first_task_is_new=True)  # fmt: skip
    assert float(np.mean(forgetful.loss[2010:2100])) > 2 * returned


def test_boundaries_follow_the_members_lead_with_a_detector_as_candidate_source() -> None:
    """Through predict_then_learn with the loss-jump test: the detector's boundaries are
    candidates; the tasks that open are those the bank confirms, near the true switches."""
    x, y, _ = _records([0, 1, 2, 0], 800)
    bank, seg = _bank(spawn_every=0), LossJump(min_task_length=20)
    opened = []
    for s in range(0, len(x), 5):
        xt, yt = torch.from_numpy(x[s : s + 5]), torch.from_numpy(y[s : s + 5])
        opened += [s + c for c in predict_then_learn(bank, xt, yt, segmenter=seg).boundaries]
    assert bank.counts["candidates_detector"] >= 3
    for switch in (800, 1600, 2400):
        assert any(switch <= o <= switch + 100 for o in opened), (switch, opened)
    assert len(opened) <= bank.counts["candidates_detector"]


def test_the_mixture_is_prequential_and_weighs_members_by_recent_loss() -> None:
    x, y, _ = _records([0], 400)
    bank = _bank(spawn_every=50)
    _feed(bank, x, y)
    xt, yt = torch.from_numpy(x[:5]), torch.from_numpy(y[:5])
    bank.predict(xt, yt)
    predicted = bank.output.clone()
    bank.predict(xt, -yt)
    assert torch.equal(bank.output, predicted)  # the label does not change its own prediction
    w = bank.member_weights
    assert float(w.sum()) == pytest.approx(1.0) and int((w > 0).sum()) >= 2
    order = torch.argsort(bank.member_scores)
    assert bool((w[order][:-1] >= w[order][1:]).all())  # lower recent loss, more weight
    leader = _bank(spawn_every=50, mix="leader")
    _feed(leader, x, y)
    assert int((leader.member_weights > 0).sum()) == 1


def test_classification_mixes_probabilities() -> None:
    model = FunctionalModel(MLP(2, 3, hidden=(8,)), Classification(3))
    bank = BankLearner(model, bank_size=3, spawn_every=10, support_size=5, n_features=2, seed=0)
    gen = torch.Generator().manual_seed(0)
    x, yv = torch.randn(60, 2, generator=gen), torch.randint(0, 3, (60,), generator=gen)
    for s in range(0, 60, 5):
        bank.update(x[s : s + 5], yv[s : s + 5])
    probabilities = bank.output.exp().sum(-1)
    assert torch.allclose(probabilities, torch.ones(5), atol=1e-5)
    assert bank.describe()["members_alive"] == 3.0


def test_snapshot_round_trip_with_candidates_and_memory_continues_exactly(
    tmp_path: Path,
) -> None:
    x, y, _ = _records([0, 1, 0, 2], 300)
    marks = lambda s: [0] if s % 300 == 40 else []  # noqa: E731 - a detector, late
    original = _bank(spawn_every=60, memory_size=4)
    _feed(original, x[:700], y[:700], candidates=marks)
    torch.save(original.snapshot(), tmp_path / "bank.pt")
    resumed = _bank(spawn_every=60, memory_size=4)
    resumed.restore(torch.load(tmp_path / "bank.pt", weights_only=True))
    outs = []
    for learner in (original, resumed):
        got = []
        for s in range(700, 1200, 5):
            learner.update(torch.from_numpy(x[s : s + 5]), torch.from_numpy(y[s : s + 5]),
                           candidates=marks(s))  # fmt: skip
            got.append(learner.output)
        outs.append(torch.cat(got))
    assert torch.equal(outs[0], outs[1])
    assert original.describe() == resumed.describe()
    assert original.counts["boundaries_bank"] >= 1 and len(original.memory or []) >= 1


def test_memory_merges_near_duplicates_evicts_the_least_used_and_has_a_fixed_size() -> None:
    model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
    gen = torch.Generator().manual_seed(0)
    base = model.init_params(gen)
    memory = ConceptMemory(model, base, {}, capacity=2)
    size = memory.nbytes
    concepts = [model.init_params(gen) for _ in range(3)]
    memory.store(concepts[0], {}, now=1)
    nudged = {k: v + 1e-4 for k, v in concepts[0].items()}
    memory.store(nudged, {}, now=2)  # the same concept, a little further trained
    assert len(memory) == 1 and memory.merges == 1 and memory.uses.tolist() == [2, 0]
    memory.store(concepts[1], {}, now=3)
    memory.store(concepts[2], {}, now=4)  # full: the least used (concepts[1]) goes
    x = torch.linspace(-2, 2, 16)[:, None]
    kept = [memory.best(x, model(c, x).squeeze(-1))[1] for c in concepts]
    assert kept[0] < 1e-6 and kept[2] < 1e-12 and kept[1] > 1e-3
    assert memory.nbytes == size


def test_a_non_finite_record_does_not_poison_the_bank() -> None:
    x, y, _ = _records([0], 200)
    bank = _bank(spawn_every=50)
    x[57, 0], y[120] = np.nan, np.inf
    _feed(bank, x, y)
    assert all(bool(torch.isfinite(v).all()) for v in bank.fast_weights.values())
    assert bool(torch.isfinite(bank.output).all())

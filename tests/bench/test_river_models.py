"""river's models as benchmark competitors: the loss they report and their task variants."""

from __future__ import annotations

import numpy as np
import pytest

from streammeta.bench.river_models import ADWIN_RETRAIN, LOGREG, Peer, RiverModel
from streammeta.registry import PEERS


def test_regression_loss_is_the_squared_error_before_learning() -> None:
    x = np.linspace(0, 1, 200, dtype=np.float32)[:, None]
    run = LOGREG.run(x, 3 * x[:, 0] + 1)
    assert run.correct is None and run.loss[0] == pytest.approx(1.0)  # predicts 0 at first
    assert run.loss[-20:].mean() < 0.1 * run.loss[:20].mean()


@pytest.mark.parametrize("name", PEERS.tagged("river"))
def test_every_model_classifies_and_reports_cross_entropy(name: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(600, 2)).astype(np.float32)
    y = (x[:, 0] > x[:, 1]).astype(np.int64) + 2 * (x[:, 0] > 0.5)  # 4 classes
    model = PEERS.load(name)
    assert isinstance(model, RiverModel) and model.name == name
    run = model.run(x, y, n_classes=4)
    assert run.loss[0] == pytest.approx(np.log(4))  # uniform before any learning
    assert run.correct is not None and run.correct[-200:].mean() > 0.6
    assert run.records_per_s > 0


def test_the_retraining_wrapper_has_no_regressor() -> None:
    assert ADWIN_RETRAIN.build() is None
    assert PEERS.tagged("classification") == ("river_adwin_retrain",)
    with pytest.raises(ValueError, match="has no regressor"):
        ADWIN_RETRAIN.run(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="'river_arf'"):
        PEERS.load("river_svm")


def test_every_peer_in_the_registry_loads_and_runs_records() -> None:
    for entry in PEERS:
        peer: Peer = entry.load()
        assert callable(peer.run), entry.name

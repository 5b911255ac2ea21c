"""Online standardization (streammeta.learn.scale): exact running statistics within the horizon,
an exponential horizon past it, clipping, non-finite records, inversion, state round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from streammeta.learn.scale import Standardizer


def _columns(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` records of 3 columns on very different scales and offsets."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, 3)) * [1.0, 1000.0, 0.01] + [0.0, 5e4, -3.0]
    return torch.from_numpy(values.astype(np.float32))


def test_statistics_equal_numpys_within_the_horizon_whatever_the_batches() -> None:
    values = _columns(1 + 7 + 30 + 1 + 61)
    s = Standardizer(3, horizon=1000)
    start = 0
    for size in (1, 7, 30, 1, 61):  # uneven batches, one record among them
        s.observe(values[start : start + size])
        start += size
        seen = values[:start].double().numpy()
        assert s.count == start
        np.testing.assert_allclose(s.mean.numpy(), seen.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.var.numpy(), seen.var(0), rtol=1e-4, atol=1e-10)


def test_one_column_accepts_a_flat_tensor() -> None:
    s = Standardizer(1, horizon=100)
    s.observe(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert s.mean.tolist() == [2.5] and s.var.tolist() == [1.25]
    assert s(torch.tensor([2.5, 2.5 + 1.25**0.5])).tolist() == pytest.approx([0.0, 1.0])


def test_past_the_horizon_the_statistics_follow_the_stream() -> None:
    # 200 records around 0, then 2000 around 10, horizon 100: equal weights would give a mean
    # of 10 * 2000 / 2200 = 9.09 and a variance near 9; an exponential horizon of 100 records
    # has forgotten the first part (weight 0.99^2000 ~ 2e-9) and sees about 1
    gen = torch.Generator().manual_seed(0)
    s = Standardizer(1, horizon=100)
    s.observe(torch.randn(200, 1, generator=gen))
    for _ in range(100):
        s.observe(10 + torch.randn(20, 1, generator=gen))
    assert s.count == 2200
    assert abs(s.mean.item() - 10) < 0.3
    assert 0.6 < s.var.item() < 1.5
    # a single record past the horizon weighs 1/horizon, not 1/count
    before = s.mean.clone()
    s.observe(torch.tensor([[before.item() + 100.0]]))
    assert s.mean.item() == pytest.approx(before.item() + 1.0, abs=1e-3)


def test_a_constant_column_standardizes_to_zero_and_a_move_is_clipped() -> None:
    values = torch.stack([torch.full((50,), 5.0), torch.linspace(-1, 1, 50)], 1)
    s = Standardizer(2, clip=5.0)
    s.observe(values)
    z = s(values)
    assert torch.isfinite(z).all()
    assert (z[:, 0] == 0).all()
    assert s(torch.tensor([[5.1, 0.0], [4.9, 0.0]]))[:, 0].tolist() == [5.0, -5.0]
    zeros = Standardizer(1)
    zeros.observe(torch.zeros(10, 1))  # a constant 0: the floor is absolute
    assert zeros(torch.tensor([[0.0], [1e-3]])).tolist() == [[0.0], [5.0]]


def test_a_first_record_far_from_the_rest_and_a_heavy_tail_are_clipped() -> None:
    s = Standardizer(1, clip=3.0)
    s.observe(torch.tensor([[1000.0]]))  # one record: no spread known yet
    assert s.var.item() == 0.0
    assert s(torch.tensor([[1000.0], [0.0], [2000.0]])).flatten().tolist() == [0.0, -3.0, 3.0]
    s.observe(torch.randn(99, 1, generator=torch.Generator().manual_seed(0)))
    z = s(torch.tensor([[-1e30], [1e6], [0.0]]))
    assert z[:2].flatten().tolist() == [-3.0, 3.0]
    assert abs(z[2].item()) < 1.0  # an ordinary value is not clipped


def test_non_finite_records_are_ignored_and_map_to_nan() -> None:
    values = _columns(40)
    dirty = values.clone()
    dirty[3, 0] = float("nan")
    dirty[17, 1] = float("inf")
    dirty[30, 2] = -float("inf")
    clean = values[[i for i in range(40) if i not in (3, 17, 30)]]
    a, b = Standardizer(3), Standardizer(3)
    a.observe(dirty)
    b.observe(clean)
    assert a.count == b.count == 37
    assert torch.equal(a.mean, b.mean) and torch.equal(a.var, b.var)
    a.observe(torch.full((5, 3), float("nan")))  # nothing finite: nothing changes
    assert a.count == 37 and torch.equal(a.mean, b.mean) and torch.equal(a.var, b.var)
    z = a(dirty[[3, 17, 30]])
    assert z.isnan().tolist() == [[True, False, False], [False, True, False], [False, False, True]]
    assert torch.isfinite(z[~z.isnan()]).all()


def test_before_any_record_values_pass_unchanged() -> None:
    s = Standardizer(2)
    values = torch.tensor([[1e6, -3.0]])
    assert torch.equal(s(values), values)
    assert torch.equal(s.invert(torch.tensor([7.0])), torch.tensor([7.0]))
    with pytest.raises(ValueError, match="horizon=0"):
        Standardizer(2, horizon=0)


def test_invert_undoes_standardization_within_the_clip() -> None:
    values = _columns(200)
    s = Standardizer(3, clip=5.0)
    s.observe(values)
    z = s(values)
    assert z.abs().max() < 5.0  # nothing clipped in a normal sample of 200
    for column in range(3):
        back = s.invert(z[:, column], column=column)
        scale = values[:, column].std().item()
        torch.testing.assert_close(back, values[:, column], atol=1e-5 * scale, rtol=1e-6)


def test_state_round_trip_continues_identically() -> None:
    values = _columns(300, seed=1)
    live = Standardizer(3, horizon=50)
    live.observe(values[:120])  # past the horizon: the exponential branch is in the state
    buffer = io.BytesIO()
    torch.save(live.state_dict(), buffer)
    buffer.seek(0)
    resumed = Standardizer(3, horizon=50)
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for start in range(120, 300, 45):
        live.observe(values[start : start + 45])
        resumed.observe(values[start : start + 45])
        assert live.count == resumed.count
        assert torch.equal(live(values), resumed(values))
        assert torch.equal(live.invert(torch.ones(3), 1), resumed.invert(torch.ones(3), 1))
    # a standardizer that did not resume would not match: the comparison has teeth
    fresh = Standardizer(3, horizon=50)
    fresh.observe(values[120:])
    assert not torch.equal(fresh.mean, live.mean)

"""Invariants of the meta-model (streammeta.learn.meta, .optim, .model): a clone predicts like the
original, meta-gradients reach the initialization and every learned-optimizer parameter, first
order equals a hand-built reference, and vmap over tasks equals a per-task loop."""

import math

import pytest
import torch

from streammeta.learn.learner import MetaLearner
from streammeta.learn.meta import MetaModel
from streammeta.learn.model import MLP, FunctionalModel, Params, Regression
from streammeta.learn.optim import RATE_RANGE, LearnedOptimizer, MetaSGD, make_optimizer
from streammeta.registry import INNER_OPTIMIZERS

OPTIMIZERS = INNER_OPTIMIZERS.names

LR = 0.05


def _meta(
    optimizer: str,
    hidden: tuple[int, ...] = (8,),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
) -> MetaModel:
    model = FunctionalModel(MLP(1, 1, hidden=hidden), Regression())
    init = model.init_params(torch.Generator().manual_seed(seed))
    init = {k: v.to(dtype) for k, v in init.items()}
    return MetaModel(model, make_optimizer(optimizer, init, LR), init)


def _sinusoid_tasks(
    tasks: int, chunks: int, k: int, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``xs [tasks, chunks, k, 1]``, ``ys [tasks, chunks, k]``: y = A sin(x + phi) per task."""
    gen = torch.Generator().manual_seed(seed)
    amp = 0.1 + 4.9 * torch.rand(tasks, 1, 1, generator=gen, dtype=dtype)
    phase = math.pi * torch.rand(tasks, 1, 1, generator=gen, dtype=dtype)
    xs = -5.0 + 10.0 * torch.rand(tasks, chunks, k, 1, generator=gen, dtype=dtype)
    return xs, amp * torch.sin(xs[..., 0] + phase)


def _grads(meta: MetaModel, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    named = list(meta.named_parameters())
    grads = torch.autograd.grad(loss, [p for _, p in named])
    return {name: g for (name, _), g in zip(named, grads, strict=True)}


def _randomize(opt: torch.nn.Module, seed: int) -> None:
    """Move every optimizer parameter off its initial value (the learned optimizer's last layer
    starts at zero, which would hide gradient paths through the first layer)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in opt.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))


# --- clone ---------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("first_order", [False, True])
def test_clone_predicts_like_the_original(optimizer: str, first_order: bool) -> None:
    meta = _meta(optimizer)
    x = torch.linspace(-5, 5, 33)[:, None]
    clone = meta.clone(first_order=first_order)
    assert torch.equal(clone(x), meta.model(meta.init_params(), x))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_adapting_a_clone_leaves_the_meta_model_alone(optimizer: str) -> None:
    meta = _meta(optimizer)
    before = {k: v.detach().clone() for k, v in meta.state_dict().items()}
    x = torch.linspace(-5, 5, 20)[:, None]
    y = 3.0 * torch.sin(x[:, 0])
    clone = meta.clone()
    loss0 = meta.model.loss(clone.params, x, y)
    clone.adapt(x, y)
    assert meta.model.loss(clone.params, x, y) < loss0  # the clone moved, downhill
    for k, v in meta.state_dict().items():
        assert torch.equal(v, before[k]), k
    # a second clone starts again from the initialization
    assert torch.equal(meta.clone()(x), meta.model(meta.init_params(), x))


# --- meta-gradients reach every meta-parameter ---------------------------------------------


def _nonzero_finite(grads: dict[str, torch.Tensor | None]) -> dict[str, bool]:
    return {
        k: g is not None and bool(torch.isfinite(g).all()) and bool(g.abs().sum() > 0)
        for k, g in grads.items()
    }


@pytest.mark.parametrize("first_order", [False, True], ids=["maml", "fomaml"])
def test_meta_gradient_reaches_init_and_every_metasgd_rate(first_order: bool) -> None:
    meta = _meta("metasgd")
    xs, ys = _sinusoid_tasks(tasks=4, chunks=3, k=10)
    loss, _ = meta.meta_loss(xs, ys, first_order=first_order, steps=2)
    loss.backward()
    grads = {n: p.grad for n, p in meta.named_parameters()}
    assert set(grads) == {f"init.{k}" for k in meta.init} | {
        f"optimizer.scales.{k}" for k in meta.optimizer.scales
    }
    assert all(_nonzero_finite(grads).values()), _nonzero_finite(grads)


@pytest.mark.parametrize("first_order", [False, True], ids=["maml", "fomaml"])
def test_meta_gradient_reaches_init_and_every_learned_optimizer_parameter(
    first_order: bool,
) -> None:
    meta = _meta("lopt")
    opt = meta.optimizer
    assert isinstance(opt, LearnedOptimizer)
    xs, ys = _sinusoid_tasks(tasks=4, chunks=3, k=10)
    loss, _ = meta.meta_loss(xs, ys, first_order=first_order, steps=2)
    loss.backward()
    ok = _nonzero_finite({n: p.grad for n, p in meta.named_parameters()})
    # The network's output layer starts at zero (an untrained network is Meta-SGD), so on the
    # first meta-step the output is W2 tanh(W1 f + b1) + b2 with W2 = 0: the loss depends on
    # W1, b1 only through W2 and their gradient is exactly zero. Everything else gets one.
    first_layer = {"optimizer.net.0.weight", "optimizer.net.0.bias"}
    assert {k for k, v in ok.items() if not v} == first_layer
    for name in first_layer:
        assert torch.equal(
            meta.get_parameter(name).grad, torch.zeros_like(meta.get_parameter(name))
        )
    # One meta-step moves W2 off zero; from then on the first layer gets a gradient too.
    adam = torch.optim.Adam(meta.parameters(), lr=1e-3)
    adam.step()
    adam.zero_grad()
    loss, _ = meta.meta_loss(xs, ys, first_order=first_order, steps=2)
    loss.backward()
    ok = _nonzero_finite({n: p.grad for n, p in meta.named_parameters()})
    assert all(ok.values()), ok


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "ftml"])
def test_meta_updates_move_every_learned_optimizer_parameter(algorithm: str) -> None:
    """Through the online learner: after a few meta-updates every meta-parameter has moved."""
    model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
    learner = MetaLearner(
        model, algorithm=algorithm, optimizer="lopt", support_size=5, meta_batch=4, seed=0
    )
    before = {n: p.detach().clone() for n, p in learner.meta.named_parameters()}
    xs, ys = _sinusoid_tasks(tasks=3, chunks=4, k=5, seed=1)
    for t in range(3):
        learner.begin_task()
        for c in range(4):
            learner.update(xs[t, c], ys[t, c])
    assert learner.model_version >= 3
    unmoved = [n for n, p in learner.meta.named_parameters() if torch.equal(p, before[n])]
    assert unmoved == []


# --- first order against a hand-written reference ------------------------------------------


def _reference_first_order(
    init: Params, rates: Params, xs: torch.Tensor, ys: torch.Tensor, adam: bool
) -> tuple[Params, Params]:
    """FOMAML, one inner step, by hand: adapted = init - rate * d (d detached), where d is the
    support gradient g, or for Adam's first step from fresh moments g / |g|; the meta-gradient of
    init is dLq/d(adapted) and that of the rate is -d * dLq/d(adapted), both averaged over
    tasks."""
    model = FunctionalModel(MLP(1, 1, hidden=(8,)), Regression())
    names = list(init)
    d_init = {k: torch.zeros_like(v) for k, v in init.items()}
    d_rate = {k: torch.zeros_like(v) for k, v in init.items()}
    for t in range(xs.shape[0]):
        params = {k: v.detach().clone().requires_grad_(True) for k, v in init.items()}
        support = model.loss(params, xs[t, 0], ys[t, 0])
        g = dict(zip(names, torch.autograd.grad(support, [params[k] for k in names]), strict=True))
        d = {k: g[k] / (g[k].abs() + 1e-8) if adam else g[k] for k in names}
        adapted = {k: (params[k] - rates[k] * d[k]).detach().requires_grad_(True) for k in names}
        query = model.loss(adapted, xs[t, 1], ys[t, 1])
        dq = dict(zip(names, torch.autograd.grad(query, [adapted[k] for k in names]), strict=True))
        for k in names:
            d_init[k] += dq[k] / xs.shape[0]
            d_rate[k] += -d[k] * dq[k] / xs.shape[0]
    return d_init, d_rate


@pytest.mark.parametrize("optimizer", ["sgd", "metasgd"])
def test_first_order_equals_hand_written_reference(optimizer: str) -> None:
    # float64: in float32 the two computations differ by a few ulp of rounding, too close to
    # 1e-6 to be a robust bound; in float64 1e-6 is met with a wide margin and still catches any
    # error in the formula (a wrong rate or direction changes the gradients by O(1)).
    meta = _meta(optimizer, dtype=torch.float64)
    names = list(meta.init_params())
    opt = meta.optimizer
    if isinstance(opt, MetaSGD):
        # distinct learned scales of both signs: every coordinate has its own rate
        gen = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for scale in opt.scales.values():
                scale.copy_(torch.randn(scale.shape, generator=gen, dtype=scale.dtype))
        rates = {k: opt.rates()[k.replace(".", "__")].detach() for k in names}
    else:
        rates = {k: torch.full_like(v, LR) for k, v in meta.init_params().items()}
    init = {k: v.detach().clone() for k, v in meta.init_params().items()}
    xs, ys = _sinusoid_tasks(tasks=5, chunks=2, k=10, seed=2, dtype=torch.float64)
    loss, _ = meta.meta_loss(xs, ys, first_order=True, steps=1, vectorize=True)
    loss.backward()
    d_init, d_rate = _reference_first_order(init, rates, xs, ys, adam=optimizer == "metasgd")
    for k in names:
        got = meta.init[k.replace(".", "__")].grad
        assert got is not None
        torch.testing.assert_close(got, d_init[k], atol=1e-6, rtol=0, msg=k)
    if isinstance(opt, MetaSGD):
        bound = math.log(RATE_RANGE)
        for k in names:
            scale = opt.scales[k.replace(".", "__")]
            assert scale.grad is not None
            # rate = lr exp(B tanh(s / B)): d rate / d s = rate (1 - tanh(s / B)^2)
            chain = rates[k] * (1 - torch.tanh(scale.detach() / bound) ** 2)
            torch.testing.assert_close(scale.grad, d_rate[k] * chain, atol=1e-6, rtol=0, msg=k)


# --- vmap over tasks equals a per-task loop ------------------------------------------------


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("first_order", [False, True], ids=["maml", "fomaml"])
def test_vmap_over_tasks_equals_a_per_task_loop(optimizer: str, first_order: bool) -> None:
    # float32 as in production; measured max differences: losses 0, adapted parameters 6e-8,
    # meta-gradients 6.6e-7 (magnitudes up to 1.9), so atol 1e-5 has a 15x margin.
    meta = _meta(optimizer, hidden=(16, 16))
    _randomize(meta.optimizer, seed=4)
    xs, ys = _sinusoid_tasks(tasks=6, chunks=3, k=10, seed=5)
    results = {}
    for vectorize in (True, False):
        loss, adapted = meta.meta_loss(
            xs, ys, first_order=first_order, steps=2, vectorize=vectorize
        )
        results[vectorize] = (loss, adapted, _grads(meta, loss))
    (loss_v, adapted_v, grads_v), (loss_l, adapted_l, grads_l) = results[True], results[False]
    torch.testing.assert_close(loss_v, loss_l, atol=1e-5, rtol=0)
    assert adapted_v.keys() == adapted_l.keys()
    for k in adapted_v:
        assert adapted_v[k].shape[0] == xs.shape[0]
        torch.testing.assert_close(adapted_v[k], adapted_l[k], atol=1e-5, rtol=0, msg=k)
    assert grads_v.keys() == grads_l.keys()
    for k in grads_v:
        assert bool(grads_l[k].abs().sum() > 0), k  # a real comparison, not 0 == 0
        torch.testing.assert_close(grads_v[k], grads_l[k], atol=1e-5, rtol=0, msg=k)


def test_second_order_meta_gradient_equals_autograd_reference() -> None:
    """``torch.func.grad`` inside the vmapped episode must stay differentiable by the outer
    backward: the MAML meta-gradient equals one built with ``create_graph=True`` through
    ``Clone.adapt``, and differs from the first-order one (so second order is really taken)."""
    model = FunctionalModel(MLP(1, 1, hidden=(16, 16)), Regression())
    init = model.init_params(torch.Generator().manual_seed(0))
    meta = MetaModel(model, MetaSGD(init, lr=0.1), init)
    gen = torch.Generator().manual_seed(1)
    xs = torch.randn(4, 3, 10, 1, generator=gen)
    ys = 3 * torch.sin(xs[..., 0])

    def flat_grad(first_order: bool) -> torch.Tensor:
        meta.zero_grad()
        loss, _ = meta.meta_loss(xs, ys, first_order=first_order, steps=2)
        loss.backward()
        return torch.cat([p.grad.flatten() for p in meta.parameters()])

    second, first = flat_grad(False), flat_grad(True)
    meta.zero_grad()
    total = torch.zeros(())
    for i in range(4):
        clone = meta.clone(first_order=False)
        for s in range(2):
            clone.adapt(xs[i, s], ys[i, s])
            total = total + model.loss(clone.params, xs[i, s + 1], ys[i, s + 1]) / 2
    (total / 4).backward()
    reference = torch.cat([p.grad.flatten() for p in meta.parameters()])
    torch.testing.assert_close(second, reference, atol=1e-5, rtol=0)
    assert (second - first).abs().max() > 1e-2

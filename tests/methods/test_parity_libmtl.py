"""Parity with LibMTL 1.1.5: for every method both implement, the shared-parameter gradient that
LibMTL's weighting class writes and the one :func:`mtl.backward` writes, on the same float64
linear losses (``peers``: task gradients exactly the rows of J, or of the representation
problem), compared by cosine and norm ratio (ours / LibMTL's).

LibMTL 1.1.5 has EW, UW, DWA, GLS, RLW, GradNorm, MGDA (and MGDA-UB via ``rep_grad``), PCGrad,
GradVac, GradDrop, IMTL and CAGrad; Nash-MTL, DB-MTL, Aligned-MTL, MoCo, FAMO and the rest are
only in later LibMTL. Where the two are the same computation the tolerance is ``EXACT`` (float64
rounding); where LibMTL's inner solver stops early (MGDA's Frank-Wolfe, CAGrad's SLSQP) ours is
asserted to be at least as good on the method's own objective and close in direction; where a
default of ours differs on purpose the option matching LibMTL 1.1.5 is tested and the difference
asserted. ``docs/methods-parity.md`` lists the measured numbers.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import mtl.methods

if importlib.util.find_spec("LibMTL") is None:
    pytest.skip("LibMTL 1.1.5 (a test dependency) is not installed", allow_module_level=True)

import peers

D = torch.float64
EXACT = 1e-9
seeds = st.integers(0, 2**16)
#: task-gradient scales 10^U(-s, s): s = 1 spreads the norms over two decades
spreads = st.sampled_from([0.0, 1.0])


def problem(
    seed: int, tasks: int, dim: int, spread: float = 0.0, steps: int = 1
) -> list[peers.Step]:
    """``steps`` parameter-level steps: N(0, 1) rows scaled by ``10^U(-spread, spread)``,
    losses U(0.5, 2)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        scale = 10 ** (spread * (2 * torch.rand(tasks, 1, generator=gen, dtype=D) - 1))
        jac = scale * torch.randn(tasks, dim, generator=gen, dtype=D)
        out.append(peers.Step(jac, 0.5 + 1.5 * torch.rand(tasks, generator=gen, dtype=D)))
    return out


def representation_problem(
    seed: int, tasks: int, batch: int, features: int, dim: int, steps: int = 1
) -> list[peers.Step]:
    """``steps`` representation-level steps: X, H, r and the losses drawn as in :func:`problem`."""
    gen = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=D)

    return [
        peers.Step(
            normal(batch, features, dim),
            0.5 + 1.5 * torch.rand(tasks, generator=gen, dtype=D),
            heads=normal(tasks, batch, features),
            representation=normal(batch, features),
        )
        for _ in range(steps)
    ]


def assert_parity(mine: list[torch.Tensor], theirs: list[torch.Tensor], tol: float) -> None:
    """Every step: ``cos >= 1 - tol`` and ``|ratio - 1| <= tol``."""
    for k, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        cos, ratio = peers.cosine_and_ratio(a, b)
        assert cos >= 1 - tol and abs(ratio - 1) <= tol, (k, cos, ratio)


@given(seeds, st.integers(2, 5), st.integers(1, 8), spreads)
def test_ew_sums_as_libmtl(seed, tasks, dim, spread):
    """EW: ``d = sum_t g_t`` on both sides (LibMTL sums; ``mean`` is ours for 1/T)."""
    steps = problem(seed, tasks, dim, spread)
    assert_parity(peers.ours(mtl.methods.get("ew"), steps), peers.libmtl("EW", steps)[0], EXACT)


@given(seeds, st.integers(2, 5), st.integers(1, 8), spreads)
def test_gls_equals_libmtl(seed, tasks, dim, spread):
    """GLS: ``L = (prod_t L_t)^(1/T)``, so ``w_t = L / (T L_t)`` depends on the loss values."""
    steps = problem(seed, tasks, dim, spread)
    theirs = peers.libmtl("GLS", steps)[0]
    assert_parity(peers.ours(mtl.methods.get("gls"), steps), theirs, EXACT)


@given(seeds, st.integers(2, 5), st.integers(1, 8), spreads)
def test_uw_equals_libmtl_while_learning_its_scales(seed, tasks, dim, spread):
    """UW, LibMTL's form ``L_t / (2 e^s) + s/2`` from ``s = -0.5``: over four steps with SGD on
    the scales (rate 0.3) on both sides, so the scales' gradients are compared too."""
    steps = problem(seed, tasks, dim, spread, steps=4)
    mine = peers.ours(mtl.methods.get("uw", tasks=tasks).double(), steps, lr=0.3)
    assert_parity(mine, peers.libmtl("UW", steps, lr=0.3)[0], EXACT)


@given(seeds, st.integers(2, 5), st.integers(1, 8), st.integers(0, 4))
def test_dwa_equals_libmtl_after_any_number_of_epochs(seed, tasks, dim, epochs):
    """DWA (temperature 2): ``w = T softmax(r / 2)``, ``r_t`` the ratio of the last two epochs'
    mean losses, 1 before the third epoch. LibMTL reads the means from its Trainer's
    ``train_loss_buffer`` at ``epoch``; ours is fed the same means through ``observe`` and
    ``end_epoch``."""
    history = 0.5 + 1.5 * torch.rand(tasks, epochs, generator=torch.Generator().manual_seed(seed))
    history = history.to(D)
    method = mtl.methods.get("dwa")
    for e in range(epochs):
        method.observe(history[:, e])
        method.end_epoch()
    steps = problem(seed, tasks, dim)
    attributes = {"epoch": epochs, "train_loss_buffer": history.numpy()}
    theirs = peers.libmtl("DWA", steps, {"T": 2.0}, attributes=attributes)[0]
    assert_parity(peers.ours(method, steps), theirs, EXACT)


@given(seeds, st.integers(2, 5), st.integers(1, 8))
def test_rlw_draws_the_same_weights_as_libmtl(seed, tasks, dim):
    """RLW: ``w = softmax(z)``, ``z ~ N(0, I)``. LibMTL samples ``Normal(0, 1)`` from torch's
    global generator, ours ``torch.randn`` from ``generator=``: seeded alike, the draws are
    equal, so three steps agree exactly."""
    steps = problem(seed, tasks, dim, steps=3)
    theirs = peers.libmtl("RLW", steps, {"dist": "Normal"}, seed=seed)[0]
    assert_parity(peers.ours(mtl.methods.get("rlw"), steps, seed=seed), theirs, EXACT)


@given(seeds, st.integers(2, 5), st.integers(1, 8), spreads)
def test_gradnorm_equals_libmtl_while_learning_its_weights(seed, tasks, dim, spread):
    """GradNorm (alpha 1.5), ``w = T softmax(s)``, over four steps with SGD (rate 0.1) on ``s``.
    LibMTL takes ``L(0)`` from its first epoch's mean losses (``train_loss_buffer[:, 0]``) and
    balances only from the second epoch; ours takes the first step's losses. Here LibMTL is put
    in its second epoch with ``L(0)`` = the first step's losses, where the two rules agree."""
    steps = problem(seed, tasks, dim, spread, steps=4)
    first = steps[0].losses.numpy()[:, None]
    theirs = peers.libmtl(
        "GradNorm",
        steps,
        {"alpha": 1.5},
        attributes={"epoch": 1, "train_loss_buffer": first},
        lr=0.1,
    )[0]
    mine = peers.ours(mtl.methods.get("gradnorm", tasks=tasks).double(), steps, lr=0.1)
    assert_parity(mine, theirs, EXACT)


@given(seeds, st.integers(2, 4), spreads, st.data())
def test_imtl_equals_libmtl_while_learning_its_scales(seed, tasks, spread, data):
    """IMTL: IMTL-L's scaled losses ``e^s L_t - s`` and IMTL-G's closed form, over three steps
    with SGD (rate 0.3) on ``s``. On full-rank J (P >= T) our pseudo-inverse is LibMTL's
    inverse; rank-deficient J, where LibMTL's solve is singular, differs on purpose (see
    :class:`mtl.methods.aggregators.IMTLG`)."""
    dim = data.draw(st.integers(tasks, 8))
    steps = problem(seed, tasks, dim, spread, steps=3)
    mine = peers.ours(mtl.methods.get("imtl", tasks=tasks).double(), steps, lr=0.3)
    assert_parity(mine, peers.libmtl("IMTL", steps, lr=0.3)[0], 1e-7)


@given(seeds, st.integers(2, 8), spreads)
def test_pcgrad_equals_libmtl_at_two_tasks(seed, dim, spread):
    """PCGrad: both project onto the normal plane of the *original* conflicting gradient and
    sum. LibMTL shuffles with Python's ``random``, ours with torch's generator, so the orders
    differ from T = 3 on; at T = 2 the order does not matter (three steps)."""
    steps = problem(seed, 2, dim, spread, steps=3)
    assert_parity(
        peers.ours(mtl.methods.get("pcgrad"), steps), peers.libmtl("PCGrad", steps)[0], EXACT
    )


@given(seeds, st.integers(2, 8), spreads)
def test_gradvac_on_violation_equals_libmtl_at_two_tasks(seed, dim, spread):
    """GradVac (beta 0.5) over five steps at T = 2 (no random order): LibMTL 1.1.5 moves the
    EMA target only when ``rho < phi``, our ``target_update="on_violation"``. (LibMTL 1.1.5 has
    no ``+1e-8`` in its denominators, so the agreement is exact.)"""
    steps = problem(seed, 2, dim, spread, steps=5)
    mine = peers.ours(mtl.methods.get("gradvac", target_update="on_violation"), steps)
    assert_parity(mine, peers.libmtl("GradVac", steps, {"beta": 0.5})[0], 1e-8)


def test_gradvac_default_moves_the_target_where_libmtl_does_not():
    """Our default ``target_update="always"`` (the paper's algorithm, LibMTL ``main``, TorchJD)
    moves the target at every pair. Step 1: cosine 0.5, no violation from ``phi = 0``; the
    default moves ``phi`` to 0.25, LibMTL 1.1.5 keeps 0. Step 2: cosine 0.1 violates 0.25 only,
    so the default corrects both gradients (symmetrically here: a longer sum, 1.16 times) and
    LibMTL sums them unchanged."""
    angle = [0.5, 0.1]
    steps = [
        peers.Step(
            torch.tensor([[1.0, 0.0], [c, (1 - c**2) ** 0.5]], dtype=D), torch.ones(2, dtype=D)
        )
        for c in angle
    ]
    theirs = peers.libmtl("GradVac", steps, {"beta": 0.5})[0]
    default = peers.ours(mtl.methods.get("gradvac"), steps)
    on_violation = peers.ours(mtl.methods.get("gradvac", target_update="on_violation"), steps)
    assert_parity(on_violation, theirs, EXACT)
    assert_parity(default[:1], theirs[:1], EXACT)
    torch.testing.assert_close(theirs[1], steps[1].jacobian.sum(0))
    assert abs(peers.cosine_and_ratio(default[1], theirs[1])[1] - 1) > 0.1


@given(seeds, st.integers(2, 4), st.integers(1, 3), st.integers(1, 4))
def test_graddrop_draws_the_same_masks_as_libmtl(seed, tasks, batch, features):
    """GradDrop (leak 0) on the representation, signals summed over the batch as LibMTL and the
    authors: LibMTL's ``torch.rand_like`` (global generator) and our ``torch.rand``
    (``generator=``) draw the same U when seeded alike, so two steps agree exactly."""
    steps = representation_problem(seed, tasks, batch, features, 3, steps=2)
    theirs = peers.libmtl("GradDrop", steps, {"leak": 0.0}, seed=seed)[0]
    mine = peers.ours(mtl.methods.get("graddrop"), steps, seed=seed)
    assert_parity(mine, theirs, EXACT)


def _worst_improvement(jacobian: torch.Tensor, direction: torch.Tensor) -> float:
    return float((jacobian @ direction).min())


@given(seeds, st.integers(2, 6), spreads, st.sampled_from(["none", "l2"]))
def test_mgda_two_tasks_is_libmtls_closed_form_up_to_its_clamp(seed, dim, spread, gn):
    """MGDA at T = 2 (``gn`` = LibMTL's ``mgda_gn``): both solve the two-point min-norm problem
    in closed form, except that where one gradient is the min-norm point LibMTL clamps the
    weights to (0.999, 0.001) instead of (1, 0)."""
    steps = problem(seed, 2, dim, spread)
    method = mtl.methods.get("mgda", gn=gn)
    (mine,) = peers.ours(method, steps)
    (theirs,), _ = peers.libmtl("MGDA", steps, {"mgda_gn": gn})
    weights = method.last_weights
    if bool((weights == 0).any()):
        rows = steps[0].jacobian
        if gn == "l2":
            rows = rows / rows.norm(dim=1, keepdim=True)
        clamped = torch.tensor([0.999 if w == 1 else 0.001 for w in weights], dtype=D) @ rows
        torch.testing.assert_close(theirs, clamped, rtol=1e-12, atol=0)
    else:
        assert_parity([mine], [theirs], EXACT)


@given(seeds, st.integers(3, 5), spreads, st.sampled_from(["none", "l2"]))
def test_mgda_is_never_longer_than_libmtls_frank_wolfe_point(seed, tasks, spread, gn):
    """MGDA at T >= 3 on P = 6: ours is the exact min-norm point d* of the hull of the
    (normalised) gradients; LibMTL's Frank-Wolfe stops once its weights move by < 1e-5, which
    on small P can leave it far from d* (cosines down to 0.5 were measured). Its point x is
    still in the hull, so ``||d*|| <= ||x||`` and, d* being the projection of 0 onto the hull,
    ``||x - d*||^2 <= ||x||^2 - ||d*||^2``."""
    steps = problem(seed, tasks, 6, spread)
    (mine,) = peers.ours(mtl.methods.get("mgda", gn=gn), steps)
    (theirs,), _ = peers.libmtl("MGDA", steps, {"mgda_gn": gn})
    gap = float(theirs @ theirs - mine @ mine)
    scale = float(theirs @ theirs)
    assert gap >= -1e-12 * scale
    assert float((theirs - mine) @ (theirs - mine)) <= gap + 1e-12 * scale


@given(seeds, spreads, st.sampled_from(["none", "l2"]))
def test_mgda_agrees_with_libmtl_on_wide_jacobians(seed, spread, gn):
    """MGDA at T = 3, P = 50 (the benchmark's shape), where LibMTL's Frank-Wolfe converges:
    1 - cos <= 1e-4 and norm ratio within 1e-2 for spreads up to two decades (measured over
    200 seeds: 6e-6 and 6e-4)."""
    steps = problem(seed, 3, 50, spread)
    mine = peers.ours(mtl.methods.get("mgda", gn=gn), steps)
    theirs = peers.libmtl("MGDA", steps, {"mgda_gn": gn})[0]
    cos, ratio = peers.cosine_and_ratio(mine[0], theirs[0])
    assert cos >= 1 - 1e-4 and abs(ratio - 1) <= 1e-2, (cos, ratio)


@given(seeds, st.integers(2, 3))
def test_mgda_ub_equals_libmtl_for_a_batch_of_one(seed, tasks):
    """MGDA-UB (LibMTL's MGDA with ``rep_grad=True``) for B = 1, where our Jacobian over the
    representation's elements is LibMTL's (T, F) matrix (F = 40: Frank-Wolfe converges)."""
    steps = representation_problem(seed, tasks, 1, 40, 3)
    mine = peers.ours(mtl.methods.get("mgda-ub"), steps)
    assert_parity(mine, peers.libmtl("MGDA", steps, {"mgda_gn": "none"})[0], 1e-3)


@given(seeds, st.integers(2, 3))
def test_mgda_ub_libmtl_sums_over_the_batch_first(seed, batch):
    """For B > 1 LibMTL 1.1.5 computes MGDA's weights on the representation gradients summed
    over the batch, ``sum_b dL_t/d rep_b`` (T, F); ours, as the paper's bound and the authors'
    code, on every element (T, B F). Asserted: LibMTL's direction is the MGDA combination with
    the weights of the batch-summed gradients, and ours that with the weights of all of them."""
    (step,) = representation_problem(seed, 3, batch, 20, 5)
    shared = torch.einsum("tbf,bfp->tp", step.heads, step.jacobian)

    def combination(gradients: torch.Tensor) -> torch.Tensor:
        mgda = mtl.methods.get("mgda")
        mgda(gradients)
        return mgda.last_weights @ shared

    theirs = peers.libmtl("MGDA", [step], {"mgda_gn": "none"})[0]
    assert_parity(theirs, [combination(step.heads.sum(1))], 1e-3)
    mine = peers.ours(mtl.methods.get("mgda-ub"), [step])
    assert_parity(mine, [combination(step.heads.flatten(1))], EXACT)


@given(seeds, spreads)
def test_cagrad_is_at_least_libmtls_optimum(seed, spread):
    """CAGrad (c = 0.5, rescale 1: ``d / (1 + c^2)``) at T = 3, the only T LibMTL 1.1.5's
    objective accepts (it reshapes to 3). Both directions lie on the sphere
    ``||d - g_0|| = c ||g_0||``; ours solves the primal exactly, LibMTL's SLSQP the dual from
    1/T, which stops early for spread scales. Asserted: our worst task improvement
    ``min_t g_t . d`` is at least LibMTL's, and the directions agree to 1e-4 (1 - cos) and 1e-3
    (norm ratio: LibMTL adds 1e-8 to ``||g_0||`` and to ``c``) for spreads up to two decades."""
    steps = problem(seed, 3, 6, spread)
    jac = steps[0].jacobian
    mine = peers.ours(mtl.methods.get("cagrad"), steps)
    theirs = peers.libmtl("CAGrad", steps, {"calpha": 0.5, "rescale": 1})[0]
    scale = float((jac @ jac.T).abs().max())
    assert _worst_improvement(jac, mine[0]) >= _worst_improvement(jac, theirs[0]) - 1e-7 * scale
    cos, ratio = peers.cosine_and_ratio(mine[0], theirs[0])
    assert cos >= 1 - 1e-4 and abs(ratio - 1) <= 1e-3, (cos, ratio)


@pytest.mark.parametrize("rescale", [0, 2])
def test_cagrad_rescale_options_as_libmtl(rescale):
    """``rescale`` 0 (no division) and 2 (``/(1 + c)``) as LibMTL's."""
    steps = problem(0, 3, 6)
    mine = peers.ours(mtl.methods.get("cagrad", rescale=rescale), steps)
    theirs = peers.libmtl("CAGrad", steps, {"calpha": 0.5, "rescale": rescale})[0]
    assert_parity(mine, theirs, 1e-4)


def test_libmtl_runs_leave_the_global_state_alone():
    """The driver's shims are scoped: default dtype, torch's and Python's generators and
    ``sys.modules`` are as before a LibMTL run."""
    import random
    import sys

    dtype, torch_state, python_state = (
        torch.get_default_dtype(),
        torch.get_rng_state(),
        random.getstate(),
    )
    peers.libmtl("PCGrad", problem(0, 3, 4), seed=5)
    peers.libmtl("RLW", problem(0, 3, 4), {"dist": "Normal"}, seed=5)
    assert torch.get_default_dtype() == dtype
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == python_state
    assert "torchvision.models.utils" not in sys.modules

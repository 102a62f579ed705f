"""Proven identities hold on numbers: random problems through the NUMPY backend of the rules."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numeric_runs import grad, run

scale = st.floats(1e-3, 1e3)
grads = st.lists(grad, min_size=3, max_size=3)
beta = st.floats(0.0, 0.999)


@settings(deadline=None)
@given(a=scale, g=grads, b1=beta, b2=beta, lr=st.floats(1e-4, 1.0))
def test_adam_head_invariance(a, g, b1, b2, lr):
    hp = {"lr": lr, "betas": (b1, b2), "eps": 0.0}
    np.testing.assert_allclose(
        run("adam", [[a * x for x in g]], [hp]), run("adam", [g], [hp]), rtol=1e-9
    )


@settings(deadline=None)
@given(a1=scale, a2=scale, g1=grads, g2=grads, b1=beta, b2=beta)
def test_per_task_adam_backbone_invariance(a1, a2, g1, g2, b1, b2):
    hp = {"lr": 0.01, "betas": (b1, b2), "eps": 0.0}
    scaled = run("adam", [[a1 * x for x in g1], [a2 * x for x in g2]], [hp, hp], per_task=True)
    plain = run("adam", [g1, g2], [hp, hp], per_task=True)
    np.testing.assert_allclose(scaled, plain, rtol=1e-9, atol=1e-15)


@settings(deadline=None)
@given(a=scale, g1=grads, g2=grads, b1=beta, b2=beta)
def test_adam_common_scale_invariance(a, g1, g2, b1, b2):
    hp = {"lr": 0.01, "betas": (b1, b2), "eps": 0.0}
    scaled = run("adam", [[a * x for x in g1], [a * x for x in g2]], [hp])
    np.testing.assert_allclose(scaled, run("adam", [g1, g2], [hp]), rtol=1e-9, atol=1e-15)


@settings(deadline=None)
@given(a=scale, g=grads, mu=st.floats(0.0, 0.99), tau=st.floats(0.0, 0.9), nesterov=st.booleans())
def test_sgd_loss_scale_is_learning_rate(a, g, mu, tau, nesterov):
    hp = {"momentum": mu, "dampening": 0.0 if nesterov else tau, "nesterov": nesterov and mu > 0}
    scaled = run("sgd", [[a * x for x in g]], [{**hp, "lr": 0.1}])
    np.testing.assert_allclose(scaled, run("sgd", [g], [{**hp, "lr": 0.1 * a}]), rtol=1e-9)


@settings(deadline=None)
@given(a=scale, g=grads, mu=st.floats(0.0, 0.99))
def test_signum_head_invariance(a, g, mu):
    hp = {"lr": 0.01, "momentum": mu}
    np.testing.assert_array_equal(
        run("signum", [[a * x for x in g]], [hp]), run("signum", [g], [hp])
    )


@settings(deadline=None)
@given(a=scale, g=grads, eps=st.floats(1e-8, 1.0), b1=beta, b2=beta)
def test_adam_eps_rescaling_identity(a, g, eps, b1, b2):
    hp = {"lr": 0.01, "betas": (b1, b2)}
    scaled = run("adam", [[a * x for x in g]], [{**hp, "eps": eps}])
    np.testing.assert_allclose(scaled, run("adam", [g], [{**hp, "eps": eps / a}]), rtol=1e-9)


@settings(deadline=None)
@given(a=scale, g=grad, eps=st.floats(1e-8, 10.0), b2=beta)
def test_adam_eps_deviation_closed_form_and_bound(a, g, eps, b2):
    """Step 1 from zero state: sqrt(v_hat) = |g|; u_a/u_1 - 1 = (eps - eps/a)/(|g| + eps/a)."""
    hp = {"lr": 0.01, "betas": (0.9, b2), "eps": eps}
    u_a = run("adam", [[a * g]], [hp])[0]
    u_1 = run("adam", [[g]], [hp])[0]
    s = abs(g)
    closed = (eps - eps / a) / (s + eps / a)
    assert np.isclose(u_a / u_1 - 1, closed, rtol=1e-6, atol=1e-12)
    assert abs(closed) <= max(eps, eps / a) / (s + min(eps, eps / a)) * (1 + 1e-12)


@settings(deadline=None)
@given(a1=scale, a2=scale, g1=grads, g2=grads, mu=st.floats(0.0, 0.99))
def test_sgd_backbone_update_is_linear_in_scales(a1, a2, g1, g2, mu):
    hp = {"lr": 0.1, "momentum": mu}
    both = run("sgd", [[a1 * x for x in g1], [a2 * x for x in g2]], [hp])
    alone = a1 * run("sgd", [g1], [hp]) + a2 * run("sgd", [g2], [hp])
    np.testing.assert_allclose(both, alone, rtol=1e-9, atol=1e-12)

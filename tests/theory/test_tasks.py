"""T tasks: the Hydra reduction, sums over a symbolic T, the per-T fallback, numeric laws."""

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st
from numeric_runs import grad, run

import theory
from theory import configs as C
from theory import tasks
from theory.engine import Proof
from theory.tasks import TASK, A, G, T


def test_a_head_sees_its_own_scaled_gradient_whatever_t_is():
    assert tasks.head_gradient(lambda j: A[j], G[TASK, 1]) == A[TASK] * G[TASK, 1]
    others = tasks.head_gradient(lambda j: A[j] + (1 - A[j]) * sympy.KroneckerDelta(j, TASK), 1)
    assert others == 1  # scaling every other task leaves task t's head gradient alone


def test_backbone_runs_are_sums_over_a_symbolic_number_of_tasks():
    comparison = tasks.compare(C.ADAM_EPS0, "common-scale")
    assert comparison.proof.holds
    update = comparison.reference[1]
    sums = update.atoms(sympy.Sum)
    assert sums and all(s.limits[0][2] == T for s in sums)


def test_a_sum_with_a_constant_factor_normalises_to_the_factor_times_the_sum():
    alpha = sympy.Symbol("alpha", positive=True)
    assert theory.algebra.normalize(tasks.over_tasks(alpha * G[TASK, 1])) == alpha * sympy.Sum(
        G[TASK, 1], (TASK, 1, T)
    )


def test_every_statement_says_for_which_numbers_of_tasks():
    for s in theory.statements():
        if s.id.endswith("flush-to-zero"):  # a fact about number formats, not about tasks
            continue
        assert any(a.startswith("T tasks") for a in s.assumptions), s.id


@pytest.mark.parametrize(
    ("sid", "which"),
    [
        ("adam.head.per-task-scale", tasks.TASKS_SYMBOLIC),
        ("adam.backbone.common-scale", tasks.TASKS_SYMBOLIC),
        ("per-task-adam.backbone.per-task-scale", tasks.TASKS_SYMBOLIC),
        ("sgd-momentum.backbone.linear-in-scales", tasks.TASKS_SYMBOLIC),
        ("adam.backbone.per-task-scale", tasks.TASKS_REFUTED),
        ("adam-l2.head.per-task-scale", tasks.TASKS_HEAD_REFUTED),
        ("clip.global-norm.signsgd.head.per-task-scale", tasks.TASKS_EACH),
    ],
)
def test_the_assumptions_name_the_proof_for_t_tasks(sid, which):
    assert theory.get(sid).assumptions[-1] == which


def test_a_linear_statement_undecided_for_symbolic_t_is_proven_for_each_t(monkeypatch):
    real = tasks.prove_linear
    peeled = sympy.Sum(G[TASK, 1], (TASK, 1, T)) - sympy.Sum(G[TASK, 1], (TASK, 1, T - 1))

    def undecided(config, n=T):
        return Proof((peeled - G[T, 1],), (0,)) if n == T else real(config, n)

    monkeypatch.setattr(tasks, "prove_linear", undecided)
    s = tasks.linear_statement("x", "claim", ("a",), C.SGD_MOMENTUM)
    assert s.verdict == "holds" and s.assumptions[-1] == tasks.TASKS_EACH


tasks_and_data = st.integers(2, 5).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(1e-3, 1e3), min_size=n, max_size=n),
        st.lists(st.lists(grad, min_size=4, max_size=4), min_size=n, max_size=n),
    )
)


@settings(deadline=None)
@given(data=tasks_and_data, b1=st.floats(0.0, 0.999), b2=st.floats(0.0, 0.999))
def test_per_task_adam_backbone_is_invariant_for_t_tasks(data, b1, b2):
    scales, grads = data
    hps = [{"lr": 0.01, "betas": (b1, b2), "eps": 0.0}] * len(scales)
    scaled = [[a * g for g in seq] for a, seq in zip(scales, grads, strict=True)]
    np.testing.assert_allclose(
        run("adam", scaled, hps, True), run("adam", grads, hps, True), rtol=1e-9, atol=1e-15
    )


@settings(deadline=None)
@given(data=tasks_and_data, mu=st.floats(0.0, 0.99), tau=st.floats(0.0, 0.9))
def test_sgd_backbone_is_linear_in_the_scales_of_t_tasks(data, mu, tau):
    scales, grads = data
    hp = [{"lr": 0.1, "momentum": mu, "dampening": tau}]
    scaled = [[a * g for g in seq] for a, seq in zip(scales, grads, strict=True)]
    alone = sum(a * run("sgd", [seq], hp, False) for a, seq in zip(scales, grads, strict=True))
    np.testing.assert_allclose(run("sgd", scaled, hp, False), alone, rtol=1e-9, atol=1e-12)

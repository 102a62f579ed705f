"""Learning-rate schedules change no invariance: verdicts, the proofs' schedule, torch."""

import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import theory
from theory import configs as C
from theory import schedules, tasks


@pytest.mark.parametrize(("scheduled", "plain"), sorted(schedules.UNSCHEDULED.items()))
def test_a_schedule_keeps_every_verdict(scheduled, plain):
    assert theory.get(scheduled).verdict == theory.get(plain).verdict


def test_the_proof_runs_with_the_schedule():
    comparison = tasks.compare(C.ADAM_EPS0, "head-per-task-scale", schedule=True)
    assert comparison.proof.holds
    assert set(tasks.SCHEDULE) <= set().union(*(u.free_symbols for u in comparison.reference))
    without = tasks.compare(C.ADAM_EPS0, "head-per-task-scale")
    assert not set(tasks.SCHEDULE) & set().union(*(u.free_symbols for u in without.reference))


def test_a_schedule_does_not_create_an_invariance():
    cx = theory.get("schedule.adam.backbone.per-task-scale").counterexample
    assert cx["values"]["f_1"] == "1" and cx["update_scaled"] != cx["update_reference"]
    assert sympy.Rational(cx["values"]["alpha_1"]) != sympy.Rational(cx["values"]["alpha_2"])


def _torch_updates(opt_cls, grads, lr, factors, **hp):
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = opt_cls([p], lr=lr, **hp)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: factors[k])
    out = []
    for g in grads:
        before = p.detach().clone()
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        schedule.step()
        out.append((p.detach() - before).item())
    return out


grads = st.lists(
    st.floats(0.05, 5.0).flatmap(lambda m: st.sampled_from([m, -m])), min_size=4, max_size=4
)
factors = st.lists(st.floats(0.01, 1.0), min_size=5, max_size=5)


@settings(deadline=None)
@given(a=st.floats(1e-3, 1e3), g=grads, f=factors)
def test_torch_adam_with_a_schedule_keeps_the_head_invariance(a, g, f):
    hp = {"betas": (0.9, 0.999), "eps": 0.0}
    scaled = _torch_updates(torch.optim.Adam, [a * x for x in g], 0.01, f, **hp)
    plain = _torch_updates(torch.optim.Adam, g, 0.01, f, **hp)
    assert scaled == pytest.approx(plain, rel=1e-9)


@settings(deadline=None)
@given(a=st.floats(1e-3, 1e3), g=grads, f=factors)
def test_torch_sgd_with_a_schedule_keeps_loss_scale_as_learning_rate(a, g, f):
    hp = {"momentum": 0.9, "dampening": 0.1}
    scaled = _torch_updates(torch.optim.SGD, [a * x for x in g], 0.1, f, **hp)
    plain = _torch_updates(torch.optim.SGD, g, 0.1 * a, f, **hp)
    assert scaled == pytest.approx(plain, rel=1e-9)

"""The modern optimizers' atlas cells, and eps placement as a parameter of the atlas: each rule
declares how its eps scales (``eps -> eps / alpha^power``) and the atlas proves with that map;
a wrong map is rejected (not proven, and a counterexample shows the runs differ)."""

from __future__ import annotations

import dataclasses

import pytest
from test_mutations import _adam_eps_inside_root, _patch

from mtl.optim import rules
from theory import configs as C
from theory.atlas import cell
from theory.engine import counterexample, prove


def _wrong_power(config: C.Config) -> C.Config:
    return dataclasses.replace(config, eps_power=3 - config.eps_scaling)


@pytest.mark.parametrize("config", [C.SHAMPOO, C.ADAMAX, C.LARS], ids=lambda c: c.label)
def test_a_wrong_eps_map_is_rejected(config: C.Config):
    """eps/alpha^2 where the rule places eps outside a root (or eps/alpha where on a square):
    the proof fails and concrete numbers differ, so the verdict could fail."""
    wrong = _wrong_power(config)
    assert not prove(wrong, "head-per-task-scale", C.eps_map(wrong)).holds
    assert counterexample(wrong, "head-per-task-scale", C.eps_map(wrong)) is not None
    assert prove(config, "head-per-task-scale", C.eps_map(config)).holds


def test_eps_inside_the_root_maps_to_eps_over_alpha_squared(monkeypatch):
    """TF-style Adam, m_hat / sqrt(v_hat + eps): declared eps_power 2, the atlas proves it
    within bound with eps/alpha^2; with the default eps/alpha it would not be proven."""
    _patch(monkeypatch, "adam", _adam_eps_inside_root)
    tf_style = dataclasses.replace(C.ADAM, label="Adam (eps inside the root)", eps_power=2)
    found = cell(tf_style, "head-per-task-scale")
    assert (found.verdict, found.reason) == (
        "holds-within-bound",
        "proven: equals the unscaled run with eps/alpha^2",
    )
    assert not prove(C.ADAM, "head-per-task-scale", C.eps_map(C.ADAM)).holds


def _lion_without_sign(ops, param, grad, state, step, *, lr, betas, weight_decay, **_):
    """Fault: Lion steps along its interpolated momentum, without the sign."""
    beta1, beta2 = betas
    direction = ops.lerp_(ops.clone(state["exp_avg"]), grad, 1 - beta1)
    state["exp_avg"] = ops.lerp_(state["exp_avg"], grad, 1 - beta2)
    return ops.add_(param, direction, -lr)


def test_lion_without_its_sign_is_not_invariant(monkeypatch):
    assert cell(C.LION, "head-per-task-scale").verdict == "holds"
    _patch(monkeypatch, "lion", _lion_without_sign)
    assert cell(C.LION, "head-per-task-scale").verdict == "fails"


def _lars_without_trust_ratio(ops, param, grad, state, step, **hp):
    """Fault: LARS with its local rate fixed at 1 (heavy-ball SGD)."""
    return rules.sgd(
        ops, param, grad, state, step, lr=hp["lr"], momentum=hp["momentum"], dampening=0,
        nesterov=False, weight_decay=hp["weight_decay"],
    )  # fmt: skip


def test_lars_without_its_trust_ratio_is_not_invariant(monkeypatch):
    _patch(monkeypatch, "lars", _lars_without_trust_ratio)
    assert cell(C.LARS, "head-per-task-scale").verdict == "fails"


def test_the_atlas_legend_names_the_tensor_each_tensor_rule_is_decided_on():
    from theory.atlas import atlas_legend, tensor_name

    note = atlas_legend()["tensor rules"]
    assert "Muon: 1x2 matrix" in note and "LARS: 2-vector" in note
    for config in C.ATLAS_ROWS:
        assert (f"{config.label}: " in note) == bool(config.shape)
        assert not config.shape or f"{config.label}: {tensor_name(config.shape)}" in note

"""Every statement returns the verdict the maths says, with evidence that checks out."""

import math

import pytest
import sympy
import torch

import theory
from theory.statement import Statement

EXPECTED = {
    "adam.head.per-task-scale": "holds",
    "adam.head.per-task-scale.no-bias-correction": "holds",
    "adam.head.run.frozen-backbone": "holds",
    "adam.head.run.trained-backbone": "fails",
    "adam.backbone.common-scale": "holds",
    "adam.backbone.per-task-scale": "fails",
    "sgd.head.loss-scale-is-lr": "holds",
    "sgd-momentum.head.loss-scale-is-lr": "holds",
    "nesterov.head.loss-scale-is-lr": "holds",
    "sgd-momentum.head.run.frozen-backbone.loss-scale-is-lr": "holds",
    "sgd.backbone.linear-in-scales": "holds",
    "sgd-momentum.backbone.linear-in-scales": "holds",
    "sgd-momentum.head.weight-decay.loss-scale-is-lr": "fails",
    "uwo.per-task-scale.all-optimizers": "holds",
    "uwo.eps.per-task-scale": "holds-within-bound",
    "per-task-adam.backbone.per-task-scale": "holds",
    "per-task-sgd.backbone.per-task-scale": "fails",
    "signsgd.head.per-task-scale": "holds",
    "signum.head.per-task-scale": "holds",
    "adam-beta0.head.per-task-scale": "holds",
    "signsgd.all.common-scale": "holds",
    "signum.all.common-scale": "holds",
    "adam-beta0.all.common-scale": "holds",
    "signsgd.backbone.per-task-scale": "fails",
    "signum.backbone.per-task-scale": "fails",
    "adam-beta0.backbone.per-task-scale": "fails",
    "adam.eps.head.scale-is-eps-rescaling": "holds",
    "adam.eps.head.deviation-bound": "holds-within-bound",
    "adam-l2.head.per-task-scale": "fails",
    "adamw.head.per-task-scale": "holds",
    "adam.head.time-varying-scale": "fails",
    "signsgd.head.time-varying-scale": "holds",
    "signum.head.time-varying-scale": "fails",
    "adam-beta0.head.time-varying-scale": "holds",
    "sgd-momentum-l2.head.loss-scale-is-lr-and-wd": "holds",
    "adam-l2.head.loss-scale-is-wd-and-eps": "holds",
    "adagrad-init.head.per-task-scale": "fails",
    "adagrad-init.head.scale-is-accumulator-rescaling": "holds",
    "levers.sgd.head.weight-is-lr-factor": "holds",
    "levers.sgd-momentum.head.weight-is-lr-factor": "holds",
    "levers.adam.head.weight-is-lr-factor": "holds",
    "levers.sgd.backbone.weight-is-lr-factor": "fails",
    "levers.sgd-momentum.backbone.weight-is-lr-factor": "fails",
    "levers.adam.backbone.weight-is-lr-factor": "fails",
    "levers.per-task-sgd-momentum.backbone.weight-is-per-task-lr-factor": "holds",
    "levers.per-task-adam.backbone.weight-is-per-task-lr-factor": "holds",
    "hybrid.adam-heads-sgd-momentum-backbone.head.per-task-scale": "holds",
    "hybrid.sgd-momentum-heads-adam-backbone.head.per-task-scale": "fails",
    "hybrid.sgd-rms-heads-sgd-momentum-backbone.head.per-task-scale": "holds",
    "hybrid.sgd-rms-heads-sgd-momentum-backbone.head.scale-is-eps-rescaling": "holds",
    "clip.global-norm.adam.head.per-task-scale": "fails",
    "clip.global-norm.adam.head.other-task-scale": "fails",
    "clip.global-norm.signsgd.head.per-task-scale": "holds",
    "clip.per-task.adam.head.other-task-scale": "holds",
    "clip.per-task.adam.head.scale-is-threshold-rescaling": "holds",
    "clip.per-task.adam.head.per-task-scale": "fails",
    "clip.shared-only.adam.head.per-task-scale": "holds",
    "amp.grad-scaler.all-optimizers.unscale-is-exact": "holds",
    "amp.grad-scaler.adam.all.scale-left-in": "holds",
    "amp.grad-scaler.sgd-momentum.all.scale-left-in": "holds",
    "amp.float16.flush-to-zero": "holds",
    "amp.bfloat16.flush-to-zero": "holds",
    "amp.float16.adam.head.per-task-scale": "fails",
    "amp.eps-dominates.adam.head.first-step-ratio": "holds",
    "schedule.adam.head.per-task-scale": "holds",
    "schedule.adam.all.common-scale": "holds",
    "schedule.adam.eps.head.scale-is-eps-rescaling": "holds",
    "schedule.adamw.head.per-task-scale": "holds",
    "schedule.per-task-adam.backbone.per-task-scale": "holds",
    "schedule.sgd-momentum.head.loss-scale-is-lr": "holds",
    "schedule.signum.head.per-task-scale": "holds",
    "schedule.adam.backbone.per-task-scale": "fails",
}


def test_every_statement_has_the_expected_verdict():
    found = {s.id: s.verdict for s in theory.statements()}
    assert found == EXPECTED


def test_ids_are_unique_and_claims_atomic_sentences():
    ids = [s.id for s in theory.statements()]
    assert len(ids) == len(set(ids))
    for s in theory.statements():
        assert s.claim and s.assumptions


@pytest.mark.parametrize("sid", [k for k, v in EXPECTED.items() if v != "fails"])
def test_proofs_are_exact_zeros_with_an_induction_step(sid):
    s = theory.get(sid)
    assert s.residuals
    assert all(isinstance(r, sympy.Basic) and r == sympy.S.Zero for r in s.residuals)
    if s.verdict == "holds-within-bound":
        assert s.bound is not None and s.bound != 0


def test_unrolled_proof_has_steps_plus_induction():
    # 3 unrolled steps, then the update and the two moments at a symbolic step k
    assert len(theory.get("adam.head.per-task-scale").residuals) == 3 + 3


def _torch_updates(optimizer, grads, **hp):
    """The updates torch's ``optimizer`` makes on one float64 parameter (1.0) fed ``grads``."""
    p = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = optimizer([p], **hp)
    out = []
    for g in grads:
        before = p.detach().clone()
        p.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append((p.detach() - before).item())
    return out


def _torch_adam_updates(grads, betas, eps=0.0, lr=0.01, weight_decay=0.0):
    return _torch_updates(
        torch.optim.Adam, grads, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay
    )


def _frac(values, name):
    return float(sympy.Rational(values[name]))


@pytest.mark.parametrize(
    ("sid", "betas"),
    [("adam.backbone.per-task-scale", None), ("adam-beta0.backbone.per-task-scale", (0.0, 0.0))],
)
def test_backbone_counterexamples_recomputed_with_torch_adam_for_each_task_count(sid, betas):
    top = theory.get(sid).counterexample
    assert [cx["tasks"] for cx in [top, *top["more_tasks"]]] == [2, 3, 4, 5]
    for cx in [top, *top["more_tasks"]]:
        v, n, steps = cx["values"], cx["tasks"], cx["step"]
        betas = betas or (_frac(v, "beta_1"), _frac(v, "beta_2"))
        alphas = [_frac(v, f"alpha_{t}") for t in range(1, n + 1)]
        grads = [[_frac(v, f"g_{t}_{k}") for k in range(1, steps + 1)] for t in range(1, n + 1)]
        scaled = _torch_adam_updates(
            [sum(a * g[k] for a, g in zip(alphas, grads, strict=True)) for k in range(steps)], betas
        )
        plain = _torch_adam_updates([sum(g[k] for g in grads) for k in range(steps)], betas)
        assert scaled[-1] == pytest.approx(cx["update_scaled"], rel=1e-12)
        assert plain[-1] == pytest.approx(cx["update_reference"], rel=1e-12)
        assert abs(scaled[-1] - plain[-1]) > 1e-6


def test_adam_l2_counterexample_recomputed_with_torch_adam():
    cx = theory.get("adam-l2.head.per-task-scale").counterexample
    assert cx["tasks"] == "any"  # the head sees alpha_t g_t whatever the number of tasks
    v, steps = cx["values"], cx["step"]
    betas = (_frac(v, "beta_1"), _frac(v, "beta_2"))
    a, g = _frac(v, "alpha_1"), [_frac(v, f"g_1_{k}") for k in range(1, steps + 1)]
    wd = _frac(v, "lambda")
    assert wd == 1e-5  # the paper's setting
    scaled = _torch_adam_updates([a * x for x in g], betas, weight_decay=wd)
    plain = _torch_adam_updates(g, betas, weight_decay=wd)
    assert scaled[-1] == pytest.approx(cx["update_scaled"], rel=1e-9)
    assert plain[-1] == pytest.approx(cx["update_reference"], rel=1e-9)
    assert abs(scaled[-1] - plain[-1]) > 1e-5 * abs(plain[-1])  # far beyond float64 rounding


def test_trained_backbone_counterexample_recomputed_with_autograd_for_each_task_count():
    def head_updates(alphas):
        n = len(alphas)
        phi = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        psi = torch.full((n,), 0.5, dtype=torch.float64, requires_grad=True)
        y = torch.tensor([-1.0, 1.0, -1.0, 1.0, 1.0][:n], dtype=torch.float64)
        opt = torch.optim.Adam([phi, psi], lr=0.01, betas=(0.9, 0.999), eps=0.0)
        out = []
        for _ in range(2):
            before = psi[0].item()
            opt.zero_grad()
            losses = (psi * phi - y) ** 2 / 2
            (torch.tensor(alphas, dtype=torch.float64) * losses).sum().backward()
            opt.step()
            out.append(psi[0].item() - before)
        return out

    top = theory.get("adam.head.run.trained-backbone").counterexample
    assert [cx["tasks"] for cx in [top, *top["more_tasks"]]] == [2, 3, 4, 5]
    for cx in [top, *top["more_tasks"]]:
        alphas = [float(sympy.Rational(a)) for a in cx["alphas"]]
        scaled, plain = head_updates(alphas), head_updates([1.0] * len(alphas))
        assert cx["step"] == 2
        assert scaled[0] == pytest.approx(plain[0], rel=1e-12)  # first step: heads agree
        assert scaled[1] == pytest.approx(cx["update_scaled"], rel=1e-9)
        assert plain[1] == pytest.approx(cx["update_reference"], rel=1e-9)
        assert not math.isclose(scaled[1], plain[1], rel_tol=1e-6)


def _torch_sgd_updates(grads, lr, momentum=0.0, dampening=0.0):
    return _torch_updates(torch.optim.SGD, grads, lr=lr, momentum=momentum, dampening=dampening)


@pytest.mark.parametrize("slug", ["sgd", "sgd-momentum"])
def test_backbone_lever_counterexample_recomputed_with_torch_sgd(slug):
    """The backbone learning-rate factor matching the weighted first step, (a1 g11 + a2 g21) /
    (g11 + g21), misses the second step: no constant backbone lr is a task weight."""
    cx = theory.get(f"levers.{slug}.backbone.weight-is-lr-factor").counterexample
    v = cx["values"]
    a1, a2, lr = _frac(v, "alpha_1"), _frac(v, "alpha_2"), _frac(v, "lr")
    g1 = [_frac(v, f"g_1_{k}") for k in (1, 2, 3)]
    g2 = [_frac(v, f"g_2_{k}") for k in (1, 2, 3)]
    hp = {"momentum": _frac(v, "mu"), "dampening": _frac(v, "tau")} if "mu" in v else {}
    c = (a1 * g1[0] + a2 * g2[0]) / (g1[0] + g2[0])  # negative here: the weights flip the step
    weighted = _torch_sgd_updates([a1 * x + a2 * y for x, y in zip(g1, g2, strict=True)], lr, **hp)
    plain = _torch_sgd_updates([x + y for x, y in zip(g1, g2, strict=True)], lr, **hp)
    refit = [c * u for u in plain]  # SGD's updates are linear in lr (torch refuses lr < 0)
    assert weighted[0] == pytest.approx(refit[0], rel=1e-12)  # the factor matches step 1
    k = cx["step"] - 1
    assert weighted[k] == pytest.approx(cx["update_scaled"], rel=1e-12)
    assert refit[k] == pytest.approx(cx["update_reference"], rel=1e-12)
    assert abs(weighted[k] - refit[k]) > 1e-3


def test_lever_factors_are_the_weights_or_one():
    """SGD's head factor is alpha_t, one per task on per-task backbone states; Adam's is 1."""
    from theory import configs as C
    from theory import symbols as S
    from theory.engine import lever

    assert lever(C.SGD_MOMENTUM, "head-per-task-scale").factors == (S.ALPHAS[0],)
    assert lever(C.PER_TASK_SGD_MOMENTUM, "backbone-per-task-scale").factors == S.ALPHAS
    assert lever(C.ADAM_EPS0, "head-per-task-scale").factors == (1,)
    with pytest.raises(ValueError, match="per-task kind"):
        lever(C.SGD, "common-scale")


def test_hybrid_counterexample_names_the_sgd_heads_and_matches_torch():
    cx = theory.get("hybrid.sgd-momentum-heads-adam-backbone.head.per-task-scale").counterexample
    assert cx["part"] == "heads (sgd)" and cx["step"] == 1
    v = cx["values"]
    a, g = _frac(v, "alpha_1"), [_frac(v, "g_1_1")]  # the values of step 1
    hp = {"momentum": _frac(v, "mu"), "dampening": _frac(v, "tau")}
    scaled = _torch_sgd_updates([a * x for x in g], _frac(v, "lr"), **hp)
    assert scaled[0] == pytest.approx(cx["update_scaled"], rel=1e-12)


def test_a_hybrid_is_proven_part_by_part():
    """Under one common scale both groups move: the Adam heads hold (eps = 0), the SGD
    backbone fails, so the hybrid fails there; the heads alone decide its head kind."""
    from theory import configs as C
    from theory.engine import parts

    hybrid = C.HYBRIDS[0].with_hp(eps=0)
    assert [(n, c.rule, k) for n, c, k in parts(hybrid, "common-scale")] == [
        ("heads", "adam", "head-per-task-scale"),
        ("backbone", "sgd", "common-scale"),
    ]
    assert theory.prove(hybrid, "head-per-task-scale").holds
    assert not theory.prove(hybrid, "common-scale").holds
    cx = theory.counterexample(hybrid, "common-scale")
    assert cx["part"] == "backbone (sgd)"


def test_statement_rejects_inconsistent_evidence():
    with pytest.raises(ValueError, match="unknown verdict"):
        Statement("x", "c", "maybe", ("a",), (sympy.S.Zero,))
    with pytest.raises(ValueError, match="no counterexample"):
        Statement("x", "c", "fails", ("a",))
    with pytest.raises(ValueError, match="not proven"):
        Statement("x", "c", "holds", ("a",), (sympy.Symbol("r"),))
    with pytest.raises(ValueError, match="carries none"):
        Statement("x", "c", "holds-within-bound", ("a",), (sympy.S.Zero,))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid: .*adam\.head\.per-task-scale"):
        theory.get("adam.nothing")
    with pytest.raises(ValueError, match="valid: common-scale"):
        theory.prove(theory.Config("SGD", "sgd"), "sideways")

"""Learning-rate schedules: step k's learning rate is ``lr f_k`` in both runs (LambdaLR,
StepLR, cosine, warm-up: any positive factors ``f_k``, the same whatever the loss scales).

Each statement reruns a comparison of :mod:`theory.tasks` with the schedule: the scaled run with
the schedule against the reference run with the same schedule (for SGD the reference's ``lr`` is
``alpha lr``, scheduled alike). The unrolled steps carry factors ``f_1, f_2, f_3`` and the
induction step a symbolic ``f_k``, so a proof covers every schedule; a schedule also creates no
invariance (the per-task backbone statement still fails, with a decaying schedule).
"""

from __future__ import annotations

from collections.abc import Callable

from theory import configs as C
from theory import tasks
from theory.engine import Config, ReferenceMap
from theory.statement import Statement

SCHEDULED = "a learning-rate schedule: step k's lr is lr f_k (f_k > 0) in both runs"
GIVEN = "the unscaled gradient sequence is given; constant scales alpha_t > 0; zero initial state"

PER_TASK_ADAM = Config("per-task Adam (eps=0)", "adam", C.ADAM_EPS0.hp, per_task=True)
ADAMW_EPS0 = Config("AdamW (eps=0)", "adamw", {**C.ADAM_EPS0.hp, "weight_decay": C.S.WD})

CASES: tuple[tuple[str, Config, str, ReferenceMap | None, str], ...] = (
    ("adam.head.per-task-scale", C.ADAM_EPS0, "head-per-task-scale", None, "unchanged"),
    ("adam.all.common-scale", C.ADAM_EPS0, "common-scale", None, "unchanged"),
    (
        "adam.eps.head.scale-is-eps-rescaling",
        C.ADAM,
        "head-per-task-scale",
        C.eps_over_scale,
        "that of Adam with eps / alpha_t on L_t",
    ),
    ("adamw.head.per-task-scale", ADAMW_EPS0, "head-per-task-scale", None, "unchanged"),
    (
        "per-task-adam.backbone.per-task-scale",
        PER_TASK_ADAM,
        "backbone-per-task-scale",
        None,
        "unchanged",
    ),
    (
        "sgd-momentum.head.loss-scale-is-lr",
        C.SGD_MOMENTUM,
        "head-per-task-scale",
        C.lr_times_scale,
        "that of lr alpha_t on L_t (scheduled alike)",
    ),
    ("signum.head.per-task-scale", C.SIGNUM, "head-per-task-scale", None, "unchanged"),
    ("adam.backbone.per-task-scale", C.ADAM_EPS0, "backbone-per-task-scale", None, "unchanged"),
)
"""(id suffix, optimizer, invariance kind, reference map, what the update is)."""

_WHERE = {
    "head-per-task-scale": "task t's head update under loss alpha_t L_t",
    "common-scale": "every update under one common scale alpha",
    "backbone-per-task-scale": "the backbone update under per-task scales alpha_t",
}


def _case(slug: str, config: Config, kind: str, reference, what: str) -> Callable[[], Statement]:
    def build() -> Statement:
        return tasks.statement(
            f"schedule.{slug}",
            f"{config.label} with a learning-rate schedule lr f_k: {_WHERE[kind]} is {what}, "
            "as without the schedule.",
            (SCHEDULED, GIVEN),
            config,
            kind,
            reference,
            schedule=True,
        )

    return build


BUILDERS: tuple[Callable[[], Statement], ...] = tuple(_case(*case) for case in CASES)
"""The schedule statements: each verdict is the unscheduled statement's."""
UNSCHEDULED = {
    f"schedule.{slug}": slug.replace("adam.all.common-scale", "adam.backbone.common-scale")
    for slug, *_ in CASES
}
"""Each schedule statement's unscheduled counterpart (the same verdict)."""

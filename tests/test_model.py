"""The model contract: the split into shared and task parameters, and the representation."""

import pytest
import torch
from torch import nn

from mtl.model import HardParameterSharing, MultiTaskModel, split_parameters


def _model():
    torch.manual_seed(0)
    return HardParameterSharing(
        nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4)),
        {"a": nn.Linear(4, 1), "b": nn.Sequential(nn.Linear(4, 2), nn.Linear(2, 2))},
    )


def test_split_covers_every_parameter_once_with_the_module_names():
    model = _model()
    split = split_parameters(model)
    names = [n for n, _ in split.shared] + [n for t in split.tasks.values() for n, _ in t]
    assert sorted(names) == sorted(n for n, _ in model.named_parameters())
    assert [n for n, _ in split.shared] == [
        "encoder.0.weight",
        "encoder.0.bias",
        "encoder.2.weight",
        "encoder.2.bias",
    ]
    assert model.task_names == ("a", "b")
    assert (
        model.task_parameters(1)
        == model.task_parameters("b")
        == list(model.heads["b"].parameters())
    )


def test_task_outputs_depend_on_their_own_head_and_the_shared_parameters_only():
    model = _model()
    x = torch.randn(5, 3)
    outputs, rep = model(x, return_representation=True)
    torch.testing.assert_close(rep, model.encoder(x))
    for t in model.task_names:
        grads = torch.autograd.grad(
            outputs[t].sum(), list(model.parameters()), allow_unused=True, retain_graph=True
        )
        reached = {id(p) for p, g in zip(model.parameters(), grads, strict=True) if g is not None}
        own = {id(p) for p in model.shared_parameters() + model.task_parameters(t)}
        assert reached == own
    # methods working on the representation detach it and decode
    detached = rep.detach().requires_grad_(True)
    torch.testing.assert_close(model.decode(detached)["a"], outputs["a"])


def test_split_rejects_shared_claims_overlap_and_orphans():
    class Overlap(HardParameterSharing):
        def named_shared_parameters(self):
            return [*super().named_shared_parameters(), *self.heads["a"].named_parameters()]

    class Orphan(HardParameterSharing):
        def __init__(self, *args):
            super().__init__(*args)
            self.extra = nn.Parameter(torch.zeros(1))

    base = _model()
    with pytest.raises(ValueError, match="claimed by both shared and task 'a'"):
        split_parameters(Overlap(base.encoder, base.heads))
    orphan = Orphan(base.encoder, base.heads)
    with pytest.raises(ValueError, match="'extra' is neither shared nor task-specific"):
        split_parameters(orphan)
    orphan.extra.requires_grad_(False)
    split_parameters(orphan)  # frozen parameters need no owner
    with pytest.raises(ValueError, match="not a MultiTaskModel"):
        split_parameters(nn.Linear(2, 2))


def test_unknown_tasks_are_named():
    model = _model()
    with pytest.raises(ValueError, match="valid tasks: a, b"):
        model.task_parameters("c")
    with pytest.raises(ValueError, match="out of range for 2 tasks"):
        model.task_parameters(2)
    with pytest.raises(ValueError, match="at least one task head"):
        HardParameterSharing(nn.Linear(1, 1), {})
    with pytest.raises(NotImplementedError):
        MultiTaskModel().encode(torch.zeros(1))

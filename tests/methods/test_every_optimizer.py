"""Every MTL method trains with every optimizer of mtl.optim through the drop-in API.

For each (method, optimizer) pair, three steps of ``mtl.backward`` + ``optimizer.step`` on a
small hard-parameter-sharing network must move the shared parameters and every head, and keep
everything finite. Optimizer-level methods (AdaTask, MTL-IO) get their per-task groups from
``method.param_groups`` and step with the record's ``task_grads``.
"""

import pytest
import torch
from torch import nn

import mtl
import mtl.methods
import mtl.optim

TASKS = 3
MATRICES_ONLY = ("muon", "shampoo")


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.Tanh())
        self.heads = nn.ModuleList(nn.Linear(8, 1) for _ in range(TASKS))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        rep = self.encoder(x)
        return rep, [head(rep).squeeze(-1) for head in self.heads]


def _method(name: str) -> mtl.methods.Method:
    cls = mtl.methods.method_class(name)
    return mtl.methods.get(name, tasks=TASKS) if "tasks" in cls.defaults else mtl.methods.get(name)


@pytest.mark.parametrize("optimizer", mtl.optim.NAMES)
@pytest.mark.parametrize("name", mtl.methods.NAMES)
def test_method_trains_with_optimizer(name: str, optimizer: str) -> None:
    torch.manual_seed(0)
    net = Net()
    method = _method(name)
    x = torch.randn(15, 4)  # odd: an L1 bias gradient is never exactly 0
    y = torch.randn(TASKS, 15) * torch.tensor([1.0, 10.0, 0.1])[:, None]
    shared = list(net.encoder.parameters())
    heads = list(net.heads.parameters())
    if isinstance(method, mtl.methods.OptimizerLevel):
        groups = method.param_groups(shared, heads, TASKS)
        for group in groups:
            group["optimizer"] = optimizer
    else:
        groups = [{"params": shared + heads + list(method.parameters())}]
    if optimizer in MATRICES_ONLY:  # as their users do: the other parameters on AdamW
        groups = [
            {**g, "params": [p for p in g["params"] if (p.dim() == 2) == matrices], **extra}
            for g in groups
            for matrices, extra in ((True, {}), (False, {"optimizer": "adamw"}))
        ]
    opt = mtl.optim.build(optimizer, groups, lr=1e-2)
    before = [p.detach().clone() for p in shared + heads]
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        opt.zero_grad()
        rep, outputs = net(x)
        losses = torch.stack(
            [(out - target).abs().mean() for out, target in zip(outputs, y, strict=True)]
        )
        record = mtl.backward(
            losses,
            method,
            shared=shared,
            task_params=heads,
            representation=rep,
            generator=generator,
        )
        if record.task_grads is not None:
            opt.step(task_grads=record.task_grads)
        else:
            opt.step()
    after = shared + heads
    assert all(torch.isfinite(p).all() for p in after)
    moved = [not torch.equal(b, a) for b, a in zip(before, after, strict=True)]
    assert moved[: len(shared)] == [True] * len(shared), "the shared parameters did not move"
    assert all(moved[len(shared) :]), "a head did not move"

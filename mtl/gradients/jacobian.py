"""The (T, P) Jacobian of T scalar losses with respect to a list of parameters.

Row t is the gradient of ``losses[t]`` with respect to every parameter, flattened and
concatenated in the order given: ``J[t] = concat_k vec(dL_t / dp_k)``. A parameter that a loss
does not reach contributes zeros.

Two ways compute the same numbers (bit for bit on CPU):

- ``"loop"``: T reverse passes, ``torch.autograd.grad(L_t, params)`` each, keeping the graph;
- ``"batched"``: one reverse pass vectorised over the rows of the identity,
  ``torch.autograd.grad(stack(L), params, grad_outputs=I_T, is_grads_batched=True)``.

``method="auto"`` takes the path measured to be faster on the device (:data:`FASTER`). On a
2-core CPU with torch 2.14 the loop was faster for every T measured (2, 3, 10, 40; small CNN,
64x64 inputs, batch 8; ``benchmarks/bench_gradients.py`` reproduces the measurement), so the
loop is the choice wherever nothing else was measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

METHODS = ("auto", "loop", "batched")

#: The faster path per device type, by measurement (``benchmarks/bench_gradients.py``).
FASTER: dict[str, str] = {"cpu": "loop"}


def choose_method(device: torch.device | str) -> str:
    """The path ``method="auto"`` takes on ``device``: the measured faster one, else the loop."""
    return FASTER.get(torch.device(device).type, "loop")


def jacobian(
    losses: Sequence[Tensor],
    params: Sequence[Tensor],
    *,
    retain_graph: bool = False,
    method: str = "auto",
) -> Tensor:
    """The (T, P) matrix whose row t is the flattened gradient of ``losses[t]`` w.r.t. ``params``.

    ``P = sum(p.numel() for p in params)``. With ``retain_graph=False`` the graph is freed after
    the last pass, as ``backward()`` would. ``method`` is ``"auto"``, ``"loop"`` or ``"batched"``.
    """
    losses, params = _validate(losses, params, method)
    if method == "auto":
        method = choose_method(params[0].device)
    dtype = params[0].dtype
    out = torch.zeros(
        len(losses), sum(p.numel() for p in params), dtype=dtype, device=params[0].device
    )
    live = [t for t, loss in enumerate(losses) if loss.requires_grad]
    if not live:
        return out
    if method == "loop":
        for n, t in enumerate(live):
            keep = retain_graph or n < len(live) - 1
            grads = torch.autograd.grad(
                losses[t].reshape(()),
                params,
                retain_graph=keep,
                allow_unused=True,
                materialize_grads=True,
            )
            _scatter(out, slice(t, t + 1), [g.unsqueeze(0) for g in grads])
    else:
        stacked = torch.stack([losses[t].reshape(()) for t in live])
        eye = torch.eye(len(live), dtype=stacked.dtype, device=stacked.device)
        grads = torch.autograd.grad(
            stacked,
            params,
            grad_outputs=eye,
            retain_graph=retain_graph,
            allow_unused=True,
            materialize_grads=True,
            is_grads_batched=True,
        )
        _scatter(out, live, grads)
    return out


def _scatter(out: Tensor, rows: slice | list[int], grads: Sequence[Tensor]) -> None:
    """Write per-parameter gradients of shape (R, *p.shape) into ``out[rows]``, flattened."""
    start = 0
    for g in grads:
        n = g[0].numel()
        out[rows, start : start + n] = g.reshape(g.shape[0], n).to(out.dtype)
        start += n


def _validate(
    losses: Sequence[Tensor], params: Sequence[Tensor], method: str
) -> tuple[list[Tensor], list[Tensor]]:
    if method not in METHODS:
        raise ValueError(f"unknown Jacobian method {method!r}; valid methods: {', '.join(METHODS)}")
    losses, params = list(losses), list(params)
    if not losses:
        raise ValueError("jacobian needs at least one loss; got an empty sequence")
    if not params:
        raise ValueError("jacobian needs at least one parameter; got an empty sequence")
    for t, loss in enumerate(losses):
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(
                f"losses[{t}] must be a scalar tensor, got {shape}; reduce each task loss "
                "to a scalar (or pass per-sample losses as separate entries)"
            )
    for k, p in enumerate(params):
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise ValueError(f"params[{k}] must be a tensor with requires_grad=True")
    return losses, params

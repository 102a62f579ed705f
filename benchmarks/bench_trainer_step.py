"""One training step through the trainer beside (a) a minimal hand-written PyTorch loop and (b)
LibMTL 1.1.5's ``Trainer``, on copies of the same model and the same batch.

(a) EW + Adam: ``empirical.training.Trainer.step`` (finite-loss check, ``mtl.backward`` with EW,
``mtl.optim`` Adam, the per-step loss bookkeeping of the run loop) against ``zero_grad``, forward,
the summed task losses, ``backward`` and ``torch.optim.Adam.step`` written out by hand. Target:
ratio <= 1.05.

(b) PCGrad + Adam: our trainer's step against the body of LibMTL's ``Trainer.train`` loop for one
batch (``_process_data``, forward, ``_compute_loss`` (it records ``loss.item()`` per task),
``meter.update`` (its per-step training metric), ``zero_grad``, ``model.backward`` (PCGrad),
``optimizer.step`` with ``torch.optim.Adam``). The metric here is a cheap mean absolute error; the
figure without ``meter.update`` is printed too. Target: ratio <= 1.0.

LibMTL 1.1.5 (``pip install --no-deps libmtl==1.1.5``, the ``bench`` extra) needs four shims on
current torch/torchvision, applied here only: a stand-in for ``torchvision.models.utils``; a
Trainer whose device is the CPU instead of a hard-coded ``cuda:0``; ``next(iterator)`` instead of
``iterator.next()``; ``encoder.zero_grad(set_to_none=False)`` in ``zero_grad_share_params``.

The model: the benchmarks' small CNN (four 3x3 convolutions with BatchNorm, width 16), three
depth (L1) tasks. All steps are interleaved ``--reps`` times (order reversed every other time);
medians of wall-clock and of process CPU time are printed with their ratios.

    python benchmarks/bench_trainer_step.py [--reps 50] [--warmup 5] [--size 32] [--batch 16]
        [--threads N]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch
from _shared import add_timing_arguments, apply_timing_arguments, small_cnn
from bench_methods_libmtl import peers

import mtl.methods
from empirical.training.config import RunConfig
from empirical.training.optimization import build_optimizer
from empirical.training.trainer import Trainer
from mtl.losses import depth_loss

TASKS = 3


def our_step(model, method: str, x, targets) -> Callable[[], None]:
    config = RunConfig.from_dict({"method": method, "optimizer": "adam", "lr": 1e-3})
    m = mtl.methods.get(method)
    trainer = Trainer(
        model,
        {t: depth_loss for t in model.task_names},
        m,
        build_optimizer(config, model, m),
        device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(0),
    )
    totals = torch.zeros(TASKS, dtype=torch.float64)

    def step() -> None:
        nonlocal totals
        out = trainer.step(x, targets)
        totals += out.losses.double()

    return step


def hand_step(model, x, targets) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        opt.zero_grad()
        out = model(x)
        loss = sum(depth_loss(out[t], targets[t]) for t in model.task_names)
        loss.backward()
        opt.step()

    return step


def libmtl_steps(model, x, targets) -> dict[str, Callable[[], None]]:
    """LibMTL's Trainer (shimmed) with PCGrad on a copy of ``model``: the loop body, with and
    without its per-step metric update."""
    peers.import_weighting()
    import LibMTL
    from LibMTL.architecture import HPS
    from LibMTL.loss import AbsLoss
    from LibMTL.metrics import AbsMetric
    from LibMTL.weighting import PCGrad

    class L1(AbsLoss):
        def compute_loss(self, pred, gt):
            return depth_loss(pred, gt)

    class AbsErr(AbsMetric):
        def update_fun(self, pred, gt):
            self.record.append(float((pred - gt).abs().mean()))
            self.bs.append(pred.shape[0])

        def score_fun(self):
            return [sum(self.record) / max(len(self.record), 1)]

    class SharedHPS(HPS):
        def zero_grad_share_params(self):  # shim: LibMTL writes into .grad.data
            self.encoder.zero_grad(set_to_none=False)

    class CPUTrainer(LibMTL.Trainer):
        def _prepare_model(self, *args):  # shim: the device is hard-coded to cuda:0
            self.device = torch.device("cpu")
            super()._prepare_model(*args)

        def _process_data(self, loader):  # shim: iterator.next() is gone
            try:
                data, label = next(loader[1])
            except StopIteration:
                loader[1] = iter(loader[0])
                data, label = next(loader[1])
            return data.to(self.device), {t: label[t].to(self.device) for t in self.task_name}

    task_dict = {
        t: {"metrics": ["abs_err"], "metrics_fn": AbsErr(), "loss_fn": L1(), "weight": [0]}
        for t in model.task_names
    }
    encoder = copy.deepcopy(model.encoder)
    trainer = CPUTrainer(
        task_dict=task_dict,
        weighting=PCGrad,
        architecture=SharedHPS,
        encoder_class=lambda: encoder,
        decoders=copy.deepcopy(model.heads),
        rep_grad=False,
        multi_input=False,
        optim_param={"optim": "adam", "lr": 1e-3},
        scheduler_param=None,
        weight_args={},
        arch_args={},
    )
    batches = [(x, dict(targets))]
    loader = [batches, iter(batches)]

    def body(metric: bool) -> Callable[[], None]:
        def step() -> None:
            trainer.model.train()
            inputs, gts = trainer._process_data(loader)
            preds = trainer.process_preds(trainer.model(inputs))
            losses = trainer._compute_loss(preds, gts)
            if metric:
                trainer.meter.update(preds, gts)
            trainer.optimizer.zero_grad()
            trainer.model.backward(losses, **trainer.kwargs["weight_args"])
            trainer.optimizer.step()

        return step

    return {"libmtl": body(True), "libmtl-no-metric": body(False)}


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timing_arguments(parser, reps=50)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps of each first")
    parser.add_argument("--size", type=int, default=32, help="input height and width")
    parser.add_argument("--batch", type=int, default=16, help="batch size")
    args = parser.parse_args(argv)
    apply_timing_arguments(args)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 3, args.size, args.size, generator=g)
    torch.manual_seed(0)
    model = small_cnn(TASKS, width=16, depth=4)
    targets = {
        t: torch.rand(args.batch, 1, args.size, args.size, generator=g) for t in model.task_names
    }
    steps = {
        "trainer-ew": our_step(copy.deepcopy(model), "ew", x, targets),
        "hand-ew": hand_step(copy.deepcopy(model), x, targets),
        "trainer-pcgrad": our_step(copy.deepcopy(model), "pcgrad", x, targets),
        **libmtl_steps(copy.deepcopy(model), x, targets),
    }
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    clocks = {"wall": time.perf_counter, "cpu": time.process_time}
    times: dict[tuple[str, str], list[float]] = {(c, k): [] for c in clocks for k in steps}
    for rep in range(args.reps):
        order = list(steps.items())
        for key, step in order if rep % 2 == 0 else reversed(order):
            start = {c: now() for c, now in clocks.items()}
            step()
            for c, now in clocks.items():
                times[c, key].append(now() - start[c])
    med = {key: statistics.median(v) for key, v in times.items()}
    print(
        f"One training step, {TASKS} depth tasks, small CNN (width 16, BatchNorm), "
        f"{args.size}x{args.size}, batch {args.batch}; median of {args.reps} interleaved "
        f"repetitions, {torch.get_num_threads()} threads"
    )
    rows = [
        ("EW + Adam: trainer / hand loop", "trainer-ew", "hand-ew", 1.05),
        ("PCGrad + Adam: trainer / LibMTL Trainer", "trainer-pcgrad", "libmtl", 1.0),
        (
            "PCGrad: trainer / LibMTL without meter.update",
            "trainer-pcgrad",
            "libmtl-no-metric",
            1.0,
        ),
    ]
    ratios = {}
    for label, ours, base, target in rows:
        parts = []
        for c in clocks:
            ratios[c, label] = med[c, ours] / med[c, base]
            parts.append(
                f"{c} {1e3 * med[c, ours]:.2f} / {1e3 * med[c, base]:.2f} ms = "
                f"{ratios[c, label]:.3f}x"
            )
        flag = "" if ratios["wall", label] <= target else f"   <-- above the {target} target"
        print(f"  {label:<48} {'; '.join(parts)}{flag}")
    return ratios


if __name__ == "__main__":
    main()

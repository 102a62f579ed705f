"""``run(config, run_dir)``: train, evaluate each epoch, select on validation, resume exactly.

Per epoch: ``set_epoch(epoch)`` on the train dataset (and the datasets it wraps) when it has one,
so seeded augmentations and corruptions, functions of ``(seed, epoch, index)``, draw anew each
epoch and repeat on resume; train (one pass of a permutation drawn from ``seed + epoch``, so a
resumed run at an epoch boundary sees the same order), evaluate val and test (every
``eval_every`` epochs and at the last), write ``best.pt`` when the selection improved, the
checkpoint (model, optimizer, method, scaler, RNG states and every metrics line so far)
atomically, then the epoch's ``metrics.jsonl`` line, then ``best.json``.

Model and fine-tuning options:

- ``model_options``: keyword options of ``empirical.models.build`` (``shared_blocks``,
  ``head_width`` for SegNet); an unknown option is the models' error.
- ``init_from``: a finished run directory; the model starts from its ``best.pt`` (strict load:
  a missing file or a different architecture is an error naming the file).
- ``freeze_backbone``: the shared parameters get ``requires_grad=False`` and are left out of the
  optimizer; only the heads (and a method's own parameters) train. With no shared Jacobian an
  aggregator has nothing to aggregate: the heads train on the summed (transformed) task losses,
  and a weighting matters only through its loss weights, each head's gradient scaled by its
  task's weight; for Adam, scale-invariant per parameter, constant weights are invisible to the
  heads. The backbone's BatchNorm layers stay in eval mode (their running statistics are those
  of the pretrained run and are not updated). Optimizer-level methods and gradient statistics
  need the shared gradients and are refused.
- ``corruption``: ``"random"`` wraps the train split in
  ``CorruptedDataset(base, None, None, seed=data_seed)`` (a corruption and severity per sample,
  redrawn per epoch through ``set_epoch``); a corruption name fixes the corruption (severity per
  sample). Validation and test stay clean.
- ``sample_groups`` (single-task runs): the task's per-sample losses split into ``count`` groups
  (:mod:`empirical.training.groups`); the method is built for ``count`` tasks and sees the
  groups' mean losses. ``train/loss`` is then the sum of the groups' epoch-mean losses and each
  group is logged as ``train/group<i>_loss`` (``train/group<i>_weight``); evaluation is of the
  task as usual.

A metrics line: ``epoch`` (1-based), ``train/loss`` (the sum of the task losses' epoch means),
``train/<task>_loss``, ``train/<task>_weight`` (the method's mean task weight, when it has
weights), ``lr`` (per parameter group), ``val/<key>`` and ``test/<key>`` (``loss``,
``<task>_loss`` and every metric; ``delta_m`` when baselines are given), with SWATS groups
``optimizer_switches`` (:meth:`mtl.optim.Optimizer.switches`), ``events`` (clipping,
solver trouble, skipped steps: at most 20 and a count) and ``time`` (wall-clock seconds: the only
key that differs between a resumed and an uninterrupted run).

Selection uses validation only: multi-task runs with ``baselines`` by the lowest ``val/delta_m``,
every other run by the lowest ``val/loss`` (the sum of the task losses); the first epoch wins a
tie. ``best.json``: ``epoch``, ``criterion``, ``value`` and that epoch's ``val`` and ``test``
metrics.

Determinism: on the CPU every kernel the trainer uses is deterministic, and a resumed run is
bitwise identical to an uninterrupted one (tested); deterministic mode is not switched on there
(``torch.use_deterministic_algorithms`` would refuse ``MaxUnpool2d`` even on the CPU, and merely
importing its machinery costs seconds). On CUDA the run sets
``torch.use_deterministic_algorithms(True, warn_only=True)`` (restored afterwards) and turns off
cuDNN's autotuner: kernels without a deterministic variant (``MaxUnpool2d``'s backward, which
accumulates with atomics) only warn, so repeated or resumed CUDA runs agree to floating-point
rounding, not bitwise; expect metrics within about 1e-4 relative after a few epochs (not
measured here). Under ``torchrun`` every rank restores rank 0's RNG state on resume.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, DistributedSampler

from empirical.training import components, distributed, rundir, stats
from empirical.training.config import RunConfig
from empirical.training.groups import SampleGroups
from empirical.training.optimization import build_optimizer, set_epoch_lr
from empirical.training.state import (
    load_method_state,
    method_state,
    rng_state,
    seed_everything,
    set_rng_state,
)
from empirical.training.trainer import NonFiniteLoss, Trainer
from mtl.methods.base import NonFiniteError, OptimizerLevel
from mtl.runtime import signal_name

HEARTBEAT_SECONDS = 10.0
MAX_EVENTS = 20

#: Called as ``hook(epoch)`` after each epoch's files are written (tests simulate kills here).
EpochHook = Callable[[int], None]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available; use auto or cpu")
    return torch.device(name)


def run(
    config: RunConfig | dict[str, Any],
    run_dir: str | os.PathLike,
    *,
    progress: bool | None = None,
    after_epoch: EpochHook | None = None,
) -> str:
    """Train ``config`` into ``run_dir``; returns the final state, ``finished`` or ``failed``
    (an interruption is recorded as ``interrupted`` and re-raised).

    A finished run is not redone; a run with a checkpoint resumes from it; a folder holding
    another configuration is refused. ``progress``: a bar per epoch (default: when stderr is a
    terminal).
    """
    if not isinstance(config, RunConfig):
        config = RunConfig.from_dict(config)
    components.validate_names(config)
    device = resolve_device(config.device)
    ctx = distributed.init(device.type)
    if device.type == "cuda" and ctx.active:
        device = torch.device("cuda", distributed.local_device_index())
        torch.cuda.set_device(device)
    out = Path(run_dir)
    if ctx.is_main:
        rundir.prepare(out, config.as_dict(), rundir.environment(device))
    ctx.barrier()
    status = rundir.read_status(out)
    if status and (
        status["state"] == "finished"
        or (status["state"] == "failed" and str(status.get("reason", "")).startswith("non-finite"))
    ):
        return status["state"]
    if progress is None:
        progress = sys.stderr.isatty()
    with _deterministic(device):
        return _Run(config, out, device, ctx, progress and ctx.is_main, after_epoch).train()


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic mode (warn-only) and no cuDNN autotuning on CUDA; nothing on the CPU."""
    if device.type != "cuda":
        yield
        return
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*does not have a deterministic.*")
            yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.backends.cudnn.benchmark = previous[2]


class _Run:
    def __init__(self, config, out, device, ctx, progress, after_epoch):
        self.config: RunConfig = config
        self.out: Path = out
        self.device: torch.device = device
        self.ctx: distributed.Context = ctx
        self.progress = progress
        self.after_epoch = after_epoch
        self.epoch = 0
        self.lines: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        self.writer = None

    # -- setup ---------------------------------------------------------------------------------

    def _build(self) -> None:
        cfg = self.config
        seed_everything(cfg.seed)
        self.spec = components.dataset_spec(cfg)
        self.multi_task = len(self.spec.tasks) > 1
        self.baselines = components.load_baselines(cfg.baselines)
        groups = None
        if cfg.sample_groups is not None:
            groups = SampleGroups.for_task(cfg.sample_groups, self.spec)
        self.splits = {s: components.build_split(cfg, s) for s in ("train", "val", "test")}
        model = components.model_of(cfg, self.spec)
        if cfg.init_from is not None:
            components.load_initial_weights(model, cfg.init_from)
        if cfg.freeze_backbone:
            self._check_freezable()
            for p in model.shared_parameters():
                p.requires_grad_(False)
        if self.ctx.active and self.device.type != "cpu":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = model.to(self.device)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.ctx.broadcast(list(model.parameters()) + list(model.buffers()))
        losses = len(self.spec.tasks) if groups is None else groups.count
        method = components.build_method(cfg, losses).to(self.device)
        if cfg.freeze_backbone and isinstance(method, OptimizerLevel):
            raise ValueError(
                f"{method.name} is an optimizer-level method of the shared parameters, which "
                "freeze_backbone leaves out: choose a weighting or an aggregator"
            )
        optimizer = build_optimizer(cfg, model, method)
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        scaler = None
        if cfg.amp and self.device.type == "cuda":
            scaler = torch.amp.GradScaler("cuda")
        self.trainer = Trainer(
            model,
            components.task_losses(self.spec),
            method,
            optimizer,
            device=self.device,
            ctx=self.ctx,
            amp=cfg.amp,
            scaler=scaler,
            channels_last=cfg.channels_last,
            grad_clip=cfg.grad_clip,
            generator=torch.Generator().manual_seed(cfg.seed + 1),
            groups=groups,
            frozen_backbone=cfg.freeze_backbone,
        )
        self.stats_generator = torch.Generator().manual_seed(cfg.seed + 2)
        self.metrics = components.metrics_for(self.spec)
        per_rank, rest = divmod(cfg.batch_size, self.ctx.world)
        if rest:
            raise ValueError(
                f"batch_size {cfg.batch_size} is not divisible by the {self.ctx.world} processes"
            )
        self.sampler = DistributedSampler(
            self.splits["train"],
            num_replicas=self.ctx.world,
            rank=self.ctx.rank,
            shuffle=True,
            seed=cfg.seed,
        )
        self.loader_generator = torch.Generator()
        pin = self.device.type == "cuda"
        self.train_loader = DataLoader(
            self.splits["train"],
            batch_size=per_rank,
            sampler=self.sampler,
            num_workers=cfg.num_workers,
            generator=self.loader_generator,
            worker_init_fn=_seed_worker,
            pin_memory=pin,
        )
        self.eval_loaders = {
            s: DataLoader(
                self.splits[s],
                batch_size=cfg.batch_size,
                num_workers=cfg.num_workers,
                pin_memory=pin,
            )
            for s in ("val", "test")
        }

    def _check_freezable(self) -> None:
        if self.config.grad_stats_every:
            raise ValueError(
                "grad_stats_every measures shared gradients, which freeze_backbone turns off: "
                "set grad_stats_every = 0"
            )

    def _restore(self) -> None:
        ckpt = rundir.load_checkpoint(self.out)
        if ckpt is None:
            if self.ctx.is_main:
                rundir.write_metrics(self.out, [])
                rundir.truncate_grad_stats(self.out, -1)
            return
        t = self.trainer
        t.model.load_state_dict(ckpt["model"])
        load_method_state(t.method, ckpt["method"])
        t.optimizer.load_state_dict(ckpt["optimizer"])
        if t.scaler is not None and ckpt["scaler"] is not None:
            t.scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        t.generator.set_state(ckpt["generators"]["method"])
        self.stats_generator.set_state(ckpt["generators"]["stats"])
        t.step_count = ckpt["step"]
        self.epoch = ckpt["epoch"]
        self.lines = ckpt["lines"]
        self.best = ckpt["best"]
        if self.ctx.is_main:
            rundir.write_metrics(self.out, self.lines)
            rundir.truncate_grad_stats(self.out, t.step_count)
            if self.best is not None:
                rundir.write_json(self.out / rundir.BEST, self.best)

    # -- the run -------------------------------------------------------------------------------

    def train(self) -> str:
        step = 0
        try:
            self._build()
            self._restore()
            if self.ctx.is_main and self.config.tensorboard:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.out / "tensorboard"))
            self._status("running")
            while self.epoch < self.config.epochs:
                self._epoch()
            self._status("finished")
            return "finished"
        except NonFiniteLoss as err:
            self._status("failed", reason=str(err), step=err.step)
            return "failed"
        except NonFiniteError as err:  # a method saw a NaN or infinite gradient or weight
            step = self.trainer.step_count
            self._status("failed", reason=f"non-finite at step {step}: {err}", step=step)
            return "failed"
        except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (a preempted job): resumable
            step = getattr(getattr(self, "trainer", None), "step_count", step)
            self._status("interrupted", reason=signal_name(err), step=step)
            raise
        except BaseException as err:
            step = getattr(getattr(self, "trainer", None), "step_count", step)
            self._status("failed", reason=f"{type(err).__name__}: {err}", step=step)
            raise
        finally:
            if self.writer is not None:
                self.writer.close()

    def _status(self, state: str, reason: str | None = None, step: int | None = None) -> None:
        if self.ctx.is_main:
            trainer = getattr(self, "trainer", None)
            if step is None:
                step = trainer.step_count if trainer else 0
            rundir.write_status(self.out, state, epoch=self.epoch, step=step, reason=reason)

    def _epoch(self) -> None:
        cfg, t = self.config, self.trainer
        index = self.epoch  # 0-based index of the epoch being trained
        started = time.perf_counter()
        set_epoch_lr(t.optimizer, self.base_lrs, cfg, index)
        self.sampler.set_epoch(index)
        components.set_epoch(self.splits["train"], index)
        self.loader_generator.manual_seed(cfg.seed * 1_000_003 + index)
        names = t.loss_names
        totals = torch.zeros(len(names), dtype=torch.float64, device=self.device)
        weights = torch.zeros(len(names), dtype=torch.float64, device=self.device)
        weighted = batches = 0
        events: list[str] = []
        beat = time.monotonic()
        for x, targets in self._batches(index):
            x, targets = t.to_device(x, targets)
            measure = cfg.grad_stats_every and (t.step_count + 1) % cfg.grad_stats_every == 0
            if measure:
                self._grad_stats(x, targets, index + 1, t.step_count + 1)
            out = t.step(x, targets)
            totals += out.losses.double()
            batches += 1
            if out.weights is not None and out.weights.numel() == len(names):
                weights += out.weights.detach().double().reshape(-1)
                weighted += 1
            events += out.events
            if self.ctx.is_main and time.monotonic() - beat > HEARTBEAT_SECONDS:
                self._status("running")
                beat = time.monotonic()
        if hasattr(t.method, "end_epoch"):
            t.method.end_epoch()
        train_s = time.perf_counter() - started
        means = (self.ctx.mean(totals) / max(batches, 1)).tolist()
        line: dict[str, Any] = {"epoch": index + 1, "train/loss": float(sum(means))}
        line.update({f"train/{task}_loss": m for task, m in zip(names, means, strict=True)})
        if weighted:
            mean_weights = (weights / weighted).tolist()
            line.update(
                {f"train/{task}_weight": w for task, w in zip(names, mean_weights, strict=True)}
            )
        line["lr"] = [g["lr"] for g in t.optimizer.param_groups]
        switches = t.optimizer.switches() if hasattr(t.optimizer, "switches") else []
        if switches:  # SWATS groups: the step after which each runs SGD (None: still Adam)
            line["optimizer_switches"] = switches
        eval_s = 0.0
        last = index + 1 == cfg.epochs
        if (index + 1) % cfg.eval_every == 0 or last:
            eval_started = time.perf_counter()
            if self.ctx.is_main:
                line.update(self._evaluate())
            eval_s = time.perf_counter() - eval_started
        line["events"] = events[:MAX_EVENTS]
        if len(events) > MAX_EVENTS:
            line["events"].append(f"... {len(events) - MAX_EVENTS} more")
        line["time"] = {
            "train_s": train_s,
            "eval_s": eval_s,
            "epoch_s": time.perf_counter() - started,
        }
        self.epoch = index + 1
        self.lines.append(line)
        improved = self._select(line)
        if self.ctx.is_main:
            if improved:
                rundir.save_best_model(self.out, t.model.state_dict())
            rundir.save_checkpoint(self.out, self._checkpoint())
            rundir.append_line(self.out / rundir.METRICS, line)
            if self.best is not None:
                rundir.write_json(self.out / rundir.BEST, self.best)
            self._tensorboard(line)
            self._status("running")
        self.ctx.barrier()
        if self.after_epoch is not None:
            self.after_epoch(self.epoch)

    def _batches(self, index: int) -> Iterator:
        if not self.progress:
            yield from self.train_loader
            return
        from tqdm import tqdm

        desc = f"epoch {index + 1}/{self.config.epochs}"
        with contextlib.closing(tqdm(self.train_loader, desc=desc, leave=False)) as bar:
            yield from bar

    def _evaluate(self) -> dict[str, Any]:
        t = self.trainer
        result: dict[str, Any] = {}
        for split, loader in self.eval_loaders.items():
            values = t.evaluate(loader, self.metrics)
            result.update({f"{split}/{k}": v for k, v in values.items()})
            if self.baselines is not None and self.multi_task:
                metrics = {k: v for k, v in values.items() if k in self.baselines}
                missing = sorted(set(self.baselines) - set(metrics))
                if missing:
                    raise ValueError(
                        f"baselines name metrics the run does not compute: {missing}; "
                        f"computed: {sorted(values)}"
                    )
                result[f"{split}/delta_m"] = components.delta_m(metrics, self.baselines)
        return result

    def _criterion(self) -> str:
        if self.multi_task and self.baselines is not None:
            return "val/delta_m"
        return "val/loss"

    def _select(self, line: dict[str, Any]) -> bool:
        """Update the selection with this epoch's line; whether it improved."""
        key = self._criterion()
        if key not in line:
            return False
        improved = self.best is None or line[key] < self.best["value"]
        if improved:
            self.best = {
                "epoch": line["epoch"],
                "criterion": key,
                "value": line[key],
                "val": {k[4:]: v for k, v in line.items() if k.startswith("val/")},
                "test": {k[5:]: v for k, v in line.items() if k.startswith("test/")},
            }
        return improved

    def _checkpoint(self) -> dict[str, Any]:
        t = self.trainer
        return {
            "epoch": self.epoch,
            "step": t.step_count,
            "model": t.model.state_dict(),
            "optimizer": t.optimizer.state_dict(),
            "method": method_state(t.method),
            "scaler": None if t.scaler is None else t.scaler.state_dict(),
            "rng": rng_state(),
            "generators": {
                "method": t.generator.get_state(),
                "stats": self.stats_generator.get_state(),
            },
            "lines": self.lines,
            "best": self.best,
            "config": self.config.as_dict(),
        }

    def _grad_stats(self, x, targets, epoch: int, step: int) -> None:
        if not self.ctx.is_main:
            return
        record = stats.measure(
            self.trainer,
            x,
            targets,
            samples=self.config.grad_stats_samples,
            generator=self.stats_generator,
        )
        rundir.append_line(self.out / rundir.GRAD_STATS, {"epoch": epoch, "step": step, **record})

    def _tensorboard(self, line: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for key, value in line.items():
            if isinstance(value, float):
                self.writer.add_scalar(key, value, line["epoch"])
        self.writer.flush()


def _seed_worker(worker_id: int) -> None:
    """numpy and python seeds of a loader worker from torch's per-worker seed."""
    import random

    import numpy as np

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)  # noqa: NPY002 (the global generator is what datasets may use)
    random.seed(seed)

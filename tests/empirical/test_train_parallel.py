"""AMP loss scaling never reaches a method; two gloo processes match one process."""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.multiprocessing as mp
import train_doubles

from empirical.training import components
from empirical.training import run as train
from empirical.training.config import RunConfig
from empirical.training.optimization import build_optimizer
from empirical.training.trainer import Trainer


@pytest.fixture(autouse=True)
def doubles(monkeypatch):
    import empirical.datasets as datasets

    monkeypatch.setitem(datasets.DATASETS, train_doubles.TOY, ("train_doubles", "double"))
    monkeypatch.setattr(components, "arch_names", lambda: train_doubles.ARCHS)
    monkeypatch.setattr(components, "build_model", train_doubles.build_model)
    monkeypatch.setattr(components, "metrics_for", train_doubles.metrics_for)
    monkeypatch.setattr(components, "delta_m", train_doubles.delta_m)
    torch.set_num_threads(1)


def _scaled_steps(method_name: str, init_scale: float, steps: int = 3):
    config = RunConfig.from_dict(train_doubles.toy_config(method=method_name))
    spec = train_doubles.spec()
    torch.manual_seed(0)
    model = train_doubles.build_model("toy-cnn", spec)
    method = components.build_method(config, 2)
    seen: list[torch.Tensor] = []
    method.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    trainer = Trainer(
        model,
        components.task_losses(spec),
        method,
        build_optimizer(config, model, method),
        device=torch.device("cpu"),
        scaler=scaler,
        generator=torch.Generator().manual_seed(1),
    )
    data = train_doubles.build("train", root=None, augment=False, seed=0)
    weights = []
    for k in range(steps):
        batch = [data[i] for i in range(4 * k, 4 * k + 4)]
        x = torch.stack([b[0] for b in batch])
        targets = {t: torch.stack([b[1][t] for b in batch]) for t in spec.task_names}
        weights.append(trainer.step(x, targets).weights)
    assert scaler.get_scale() == init_scale  # the scale was in force for every step
    return seen, [p.detach().clone() for p in model.parameters()], weights


@pytest.mark.parametrize("method", ["pcgrad", "mgda", "uw", "dwa", "adatask"])
def test_the_method_never_sees_the_loss_scale(method):
    """With scales 1 and 2^12 (powers of two: scaling is exact) the method's inputs (Jacobian or
    losses), its weights and the trained parameters are bitwise equal."""
    seen_1, params_1, weights_1 = _scaled_steps(method, 1.0)
    seen_s, params_s, weights_s = _scaled_steps(method, 2.0**12)
    assert len(seen_1) == len(seen_s)
    if method != "adatask":
        assert len(seen_1) >= 3
    for a, b in zip(seen_1, seen_s, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(weights_1, weights_s, strict=True):
        assert (a is None and b is None) or torch.equal(a, b)
    for a, b in zip(params_1, params_s, strict=True):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(params_1, _initial(), strict=True))


def _initial():
    torch.manual_seed(0)
    return list(train_doubles.build_model("toy-cnn", train_doubles.spec()).parameters())


def test_amp_run_on_cpu_uses_bfloat16_autocast(tmp_path, monkeypatch):
    dtypes = []
    compute = Trainer.compute_losses

    def recording(self, x, targets):
        with self.autocast():
            dtypes.append(self.model.encode(x).dtype)
        return compute(self, x, targets)

    monkeypatch.setattr(Trainer, "compute_losses", recording)
    out = tmp_path / "amp"
    config = train_doubles.toy_config(amp=True, channels_last=True, epochs=1, tensorboard=True)
    assert train(config, out) == "finished"
    assert dtypes and set(dtypes) == {torch.bfloat16}
    line = json.loads((out / "metrics.jsonl").read_text())
    assert torch.isfinite(torch.tensor(line["val/loss"]))
    assert any((out / "tensorboard").iterdir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(tmp_path):
    """2 ranks x batch 4 against 1 process x batch 8, PCGrad (nonlinear in the Jacobian), one
    epoch of 3 Adam steps: the Jacobian is averaged before aggregation, so both compute the same
    update up to float rounding of the reductions (tolerance 1e-5 absolute, 1e-4 relative)."""
    config = train_doubles.toy_config(method="pcgrad", epochs=1)
    one = tmp_path / "one"
    assert train(config, one) == "finished"
    two = tmp_path / "two"
    mp.spawn(
        train_doubles.ddp_worker, args=(2, _free_port(), config, str(two)), nprocs=2, join=True
    )
    a = torch.load(one / "checkpoint.pt", weights_only=False)
    b = torch.load(two / "checkpoint.pt", weights_only=False)
    assert b["step"] == a["step"] == 3
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, atol=1e-5, rtol=1e-4)
        assert not torch.equal(value, _initial_state()[key])
    la, lb = (json.loads((d / "metrics.jsonl").read_text()) for d in (one, two))
    for key in ("train/loss", "val/loss", "test/pix_acc"):
        assert lb[key] == pytest.approx(la[key], rel=1e-5), key


def _initial_state():
    torch.manual_seed(0)
    return train_doubles.build_model("toy-cnn", train_doubles.spec()).state_dict()

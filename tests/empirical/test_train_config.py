"""RunConfig: files, overrides, errors; optimizer groups, weight decay policy, schedules."""

from __future__ import annotations

import math

import pytest
import torch
import train_doubles
from hypothesis import given
from hypothesis import strategies as st

import mtl.methods
from empirical.training import components
from empirical.training.cli import build_parser, config_from_args
from empirical.training.config import RunConfig, field_names, load, parse_override
from empirical.training.optimization import build_optimizer, lr_factor, param_groups


@pytest.fixture
def doubles(monkeypatch):
    import empirical.datasets as datasets

    monkeypatch.setitem(datasets.DATASETS, train_doubles.TOY, ("train_doubles", "double"))
    monkeypatch.setattr(components, "arch_names", lambda: train_doubles.ARCHS)
    monkeypatch.setattr(components, "build_model", train_doubles.build_model)


def test_toml_yaml_and_overrides_agree(tmp_path):
    (tmp_path / "a.toml").write_text(
        'method = "pcgrad"\nlr = 1e-3\ntasks = ["depth"]\n[dataset_options]\nsize = [16, 16]\n'
    )
    (tmp_path / "a.yaml").write_text(
        "method: pcgrad\nlr: 0.001\ntasks: [depth]\ndataset_options: {size: [16, 16]}\n"
    )
    a, b = load(tmp_path / "a.toml"), load(tmp_path / "a.yaml")
    assert a == b
    assert a.tasks == ("depth",) and a.dataset_options == {"size": [16, 16]}
    c = load(tmp_path / "a.toml", ["lr=0.5", "method=ew", "betas=[0.8, 0.9]"])
    assert (c.lr, c.method, c.betas) == (0.5, "ew", (0.8, 0.9))


def test_parse_override_reads_toml_values_and_bare_strings():
    assert parse_override("lr=1e-3") == ("lr", 1e-3)
    assert parse_override("batch-size=4") == ("batch_size", 4)
    assert parse_override("arch=segnet") == ("arch", "segnet")
    assert parse_override("amp=true") == ("amp", True)
    with pytest.raises(ValueError, match="key=value"):
        parse_override("lr")


def test_unknown_key_names_it_and_lists_valid_keys(tmp_path):
    (tmp_path / "c.toml").write_text("learning_rate = 0.1\n")
    with pytest.raises(ValueError, match="'learning_rate'") as err:
        load(tmp_path / "c.toml")
    assert "batch_size" in str(err.value) and "grad_stats_every" in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"lr": "fast"}, "'lr' must be"),
        ({"schedule": "poly"}, "valid: none, step, cosine"),
        ({"device": "tpu"}, "valid: auto, cpu, cuda"),
        ({"grad_clip": 0.0}, "grad_clip must be > 0"),
        ({"tasks": []}, "tasks must name at least one task"),
    ],
)
def test_bad_values_are_errors(change, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(change)


@pytest.mark.parametrize(
    ("key", "value", "listed"),
    [
        ("dataset", "imagenet", "synthetic-scenes"),
        ("arch", "vgg", "toy-cnn"),
        ("method", "gradnorm-plus", "pcgrad"),
        ("optimizer", "adadelta", "adam"),
        ("backbone_optimizer", "adadelta", "signum"),
    ],
)
def test_unknown_names_list_the_valid_ones(doubles, key, value, listed):
    config = RunConfig.from_dict(train_doubles.toy_config(**{key: value}))
    with pytest.raises(ValueError, match=f"unknown.*{value}") as err:
        components.validate_names(config)
    assert listed in str(err.value)


def test_cli_flags_file_and_set_precedence(tmp_path):
    (tmp_path / "f.toml").write_text('lr = 0.1\nmethod = "mgda"\nepochs = 7\n')
    args = build_parser().parse_args(
        [
            "--config", str(tmp_path / "f.toml"), "--out", str(tmp_path / "run"),
            "--lr", "1e-3", "--tasks", "segmentation,depth", "--amp",
            "--dataset-options", "{size = [8, 8]}", "--set", "epochs=2",
        ]
    )  # fmt: skip
    config = config_from_args(args)
    assert config.lr == 1e-3 and config.method == "mgda" and config.epochs == 2
    assert config.tasks == ("segmentation", "depth") and config.amp is True
    assert config.dataset_options == {"size": [8, 8]}


def test_every_field_has_a_flag():
    flags = {a.dest for a in build_parser()._actions}
    assert set(field_names()) <= flags


def _model_and_method(config: RunConfig):
    model = train_doubles.build_model("toy-bn", train_doubles.spec())
    return model, components.build_method(config, len(model.task_names))


def test_hybrid_groups_inherit_what_they_do_not_set():
    config = RunConfig.from_dict(
        {"optimizer": "adam", "lr": 1e-3, "backbone_optimizer": "sgd", "backbone_lr": 0.1,
         "backbone_options": {"momentum": 0.9}, "heads_lr": 5e-3, "method": "uw"}
    )  # fmt: skip
    model, method = _model_and_method(config)
    opt = build_optimizer(config, model, method)
    groups = {g["name"]: g for g in opt.param_groups}
    assert groups["backbone"]["optimizer"] == "sgd" and groups["backbone"]["lr"] == 0.1
    assert groups["backbone"]["momentum"] == 0.9
    assert groups["heads"]["optimizer"] == "adam" and groups["heads"]["lr"] == 5e-3
    assert groups["method"]["lr"] == 1e-3  # UW's scales are trained with the main optimizer
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert ids == {id(p) for p in [*model.parameters(), *method.parameters()]}


def test_optimizer_level_methods_supply_per_task_groups_and_refuse_hybrids():
    config = RunConfig.from_dict({"method": "adatask", "lr": 1e-3})
    model, method = _model_and_method(config)
    groups = build_optimizer(config, model, method).param_groups
    assert groups[0]["tasks"] == 2 and groups[0]["optimizer"] == "adam"
    bad = config.replace(backbone_optimizer="sgd")
    with pytest.raises(ValueError, match="remove the backbone_"):
        param_groups(bad, model, method)


@pytest.mark.parametrize("decay_all", [True, False])
def test_weight_decay_policy_for_norms_and_biases(decay_all):
    """All parameters decay by default; with the exclusion, every bias and BatchNorm parameter
    (ndim <= 1) has weight_decay 0 and every weight keeps it. An SGD step with zero gradient then
    moves exactly the decayed parameters."""
    config = RunConfig.from_dict(
        {"optimizer": "sgd", "lr": 0.5, "weight_decay": 0.1, "decay_norms_and_biases": decay_all}
    )
    model, method = _model_and_method(config)
    opt = build_optimizer(config, model, method)
    for p in model.parameters():
        p.data.fill_(1.0)  # BatchNorm's shift starts at 0, which decay would not move
        p.grad = torch.zeros_like(p)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    for name, p in model.named_parameters():
        moved = not torch.equal(p.detach(), before[name])
        expected = decay_all or p.dim() > 1
        assert moved == expected, name
        if moved:
            torch.testing.assert_close(p.detach(), before[name] * (1 - 0.5 * 0.1))
    assert any(p.dim() <= 1 for p in model.parameters())  # the case is exercised


@given(
    epochs=st.integers(1, 300),
    warm=st.integers(0, 10),
    step_size=st.integers(1, 120),
    gamma=st.floats(0.1, 0.9),
)
def test_schedules(epochs, warm, step_size, gamma):
    base = {"epochs": epochs, "warmup_epochs": warm, "step_size": step_size, "gamma": gamma}
    step = RunConfig.from_dict({**base, "schedule": "step"})
    cosine = RunConfig.from_dict({**base, "schedule": "cosine"})
    none = RunConfig.from_dict({**base, "schedule": "none"})
    for e in range(min(epochs, 40)):
        if e < warm:
            assert lr_factor(step, e) == lr_factor(cosine, e) == (e + 1) / warm
            continue
        k = e - warm
        assert lr_factor(none, e) == 1.0
        assert lr_factor(step, e) == pytest.approx(gamma ** (k // step_size))
        expected = 0.5 * (1 + math.cos(math.pi * k / max(1, epochs - warm)))
        assert lr_factor(cosine, e) == pytest.approx(expected)


def test_paper_step_schedule_halves_every_100_epochs():
    config = RunConfig.from_dict({"schedule": "step", "step_size": 100, "gamma": 0.5})
    assert [lr_factor(config, e) for e in (0, 99, 100, 199, 200)] == [1, 1, 0.5, 0.5, 0.25]


def test_methods_that_count_tasks_get_the_count():
    for name in ("uw", "famo", "imtl"):
        method = components.build_method(RunConfig.from_dict({"method": name}), 3)
        assert isinstance(method, mtl.methods.Method)
        assert method.hp["tasks"] == 3

"""The vision networks: outputs per task kind, the parameter split, heads that reach only their
own outputs, MTAN's tuple representation through mtl.backward, local ImageNet weights, counts."""

from __future__ import annotations

import pytest
import torch
import torchvision
from hypothesis import given
from hypothesis import strategies as st

import mtl.methods
from empirical import models
from empirical.datasets import DatasetSpec, TaskSpec
from empirical.models import deeplab
from empirical.models.resnets import ResNetBackbone
from mtl import backward
from mtl.losses import depth_loss, segmentation_loss
from mtl.model import split_parameters

DENSE_TASKS = (
    TaskSpec("segmentation", "segmentation", 5),
    TaskSpec("depth", "depth"),
    TaskSpec("normal", "normal"),
)
LABEL_TASKS = (
    TaskSpec("smiling", "binary"),
    TaskSpec("hat", "binary"),
    TaskSpec("digit", "classification", 10),
)


def dense(h=32, w=64, tasks=DENSE_TASKS):
    return DatasetSpec("scenes", tuple(tasks), (3, h, w), real=False)


def labels(shape=(3, 32, 32), tasks=LABEL_TASKS):
    return DatasetSpec("attributes", tuple(tasks), shape, real=False)


CASES = {
    "segnet": (dense(), 2),
    "mtan": (dense(), 2),
    "deeplabv3": (dense(32, 32), 2),
    "resnet18": (labels(), 2),
    "small-cnn": (labels((1, 28, 28)), 2),
}


@pytest.fixture(scope="module")
def built():
    """One small network per architecture, with a batch of inputs, in eval mode."""
    out = {}
    for arch, (spec, width) in CASES.items():
        torch.manual_seed(0)
        model = models.build(arch, spec, width=width).eval()
        out[arch] = (model, spec, torch.randn(2, *spec.image_shape))
    return out


def expected_shape(task: TaskSpec, batch: int, hw: tuple[int, int]) -> tuple[int, ...]:
    return {
        "segmentation": (batch, task.num_classes, *hw),
        "depth": (batch, 1, *hw),
        "normal": (batch, 3, *hw),
        "binary": (batch,),
        "classification": (batch, task.num_classes),
    }[task.kind]


def test_registry_names_every_architecture():
    assert models.names() == ("segnet", "mtan", "deeplabv3", "resnet18", "small-cnn")
    assert set(CASES) == set(models.names())


@pytest.mark.parametrize("arch", list(CASES))
def test_one_output_per_task_with_its_kind_shape(built, arch):
    model, spec, x = built[arch]
    outputs = model(x)
    assert model.task_names == spec.task_names == tuple(outputs)
    for task in spec.tasks:
        out = outputs[task.name]
        assert out.dtype == torch.float32
        assert tuple(out.shape) == expected_shape(task, 2, spec.image_shape[1:])


@pytest.mark.parametrize("arch", list(CASES))
def test_every_parameter_is_shared_or_of_one_task(built, arch):
    model, spec, _ = built[arch]
    split = split_parameters(model)
    counts = [len(split.shared)] + [len(split.tasks[t]) for t in spec.task_names]
    assert all(c > 0 for c in counts)
    assert sum(counts) == len(list(model.parameters()))


@pytest.mark.parametrize("arch", list(CASES))
def test_a_task_head_reaches_only_its_own_output(built, arch):
    model, spec, x = built[arch]
    outputs = model(x)
    names = spec.task_names
    params = [model.task_parameters(t) for t in names]
    for u in names:
        grads = torch.autograd.grad(
            outputs[u].pow(2).sum(),
            [p for own in params for p in own],
            retain_graph=True,
            allow_unused=True,
        )
        reached = []
        for t, own in zip(names, params, strict=True):
            mine, grads = grads[: len(own)], grads[len(own) :]
            if any(g is not None and bool(g.abs().sum() > 0) for g in mine):
                reached.append(t)
        assert reached == [u]


@pytest.mark.parametrize("arch", list(CASES))
def test_the_representation_depends_on_the_shared_parameters_only(built, arch):
    model, spec, x = built[arch]
    rep = model.encode(x)
    parts = rep if isinstance(rep, tuple) else (rep,)
    total = sum(p.sum() for p in parts)
    heads = [p for t in spec.task_names for p in model.task_parameters(t)]
    assert all(g is None for g in torch.autograd.grad(total, heads, allow_unused=True))
    shared = torch.autograd.grad(total, model.shared_parameters(), allow_unused=True)
    assert any(g is not None for g in shared)


@pytest.mark.parametrize("arch", list(CASES))
def test_decode_of_encode_is_forward(built, arch):
    model, _, x = built[arch]
    with torch.no_grad():
        composed = model.decode(model.encode(x))
        direct = model(x)
    assert composed.keys() == direct.keys()
    for name in direct:
        assert torch.equal(composed[name], direct[name])


def test_mtan_representation_is_the_shared_features_at_every_depth(built):
    model, _, x = built["mtan"]
    rep = model.encode(x)
    assert isinstance(rep, tuple) and len(rep) == 20
    # u_j and p_j of encoder block j at 1/2^j of the input; the decoder mirrors them
    assert [r.shape[-2] for r in rep[:10:2]] == [32, 16, 8, 4, 2]
    assert [r.shape[-2] for r in rep[11::2]] == [2, 4, 8, 16, 32]


def mtan_batch(tasks):
    torch.manual_seed(1)
    model = models.build("mtan", dense(32, 32, tasks), width=2)
    x = torch.randn(2, 3, 32, 32)
    targets = {
        "segmentation": torch.randint(-1, 5, (2, 32, 32)),
        "depth": torch.rand(2, 1, 32, 32),
    }
    loss_of = {"segmentation": segmentation_loss, "depth": depth_loss}

    def losses(outputs):
        return [loss_of[t](outputs[t], targets[t]) for t in model.task_names]

    return model, x, losses


def test_mtan_through_mgda_ub_equals_the_concatenated_hand_jacobian():
    model, x, losses = mtan_batch(DENSE_TASKS[:2])
    leaves = [r.detach().requires_grad_(True) for r in model.encode(x)]
    rows = [torch.autograd.grad(l, leaves, retain_graph=True) for l in losses(model.decode(leaves))]
    g1, g2 = (torch.cat([g.reshape(-1) for g in row]).double() for row in rows)
    gamma = ((g2 - g1) @ g2 / (g1 - g2).pow(2).sum()).clamp(0, 1)  # T = 2 min-norm point
    direction = (gamma * g1 + (1 - gamma) * g2).float()
    rep = model.encode(x)
    pieces = torch.split(direction, [r.numel() for r in rep])
    shared = model.shared_parameters()
    expected = torch.autograd.grad(
        rep, shared, [p.view_as(r) for p, r in zip(pieces, rep, strict=True)]
    )

    outputs, rep = model(x, return_representation=True)
    heads = [p for t in model.task_names for p in model.task_parameters(t)]
    record = backward(
        losses(outputs),
        mtl.methods.get("mgda-ub"),
        shared=shared,
        task_params=heads,
        representation=rep,
    )
    torch.testing.assert_close(record.weights.double(), torch.stack([gamma, 1 - gamma]))
    for p, e in zip(shared, expected, strict=True):
        torch.testing.assert_close(p.grad, e, rtol=1e-4, atol=1e-6)


def test_mtan_through_graddrop_with_one_task_is_the_plain_gradient():
    model, x, losses = mtan_batch(DENSE_TASKS[1:2])
    shared = model.shared_parameters()
    outputs, rep = model(x, return_representation=True)
    (loss,) = losses(outputs)
    expected = torch.autograd.grad(loss, shared, retain_graph=True)
    backward([loss], mtl.methods.get("graddrop"), shared=shared, representation=rep)
    for p, e in zip(shared, expected, strict=True):
        torch.testing.assert_close(p.grad, e, rtol=1e-4, atol=1e-7)


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(ValueError, match="segnet, mtan, deeplabv3, resnet18, small-cnn"):
        models.build("unet", dense())


@pytest.mark.parametrize(
    ("arch", "spec", "kinds"),
    [
        ("segnet", labels(), "segmentation, depth, normal"),
        ("mtan", labels(), "segmentation, depth, normal"),
        ("deeplabv3", labels(), "segmentation, depth, normal"),
        ("resnet18", dense(), "binary, classification"),
        ("small-cnn", dense(), "binary, classification"),
    ],
)
def test_an_architecture_refuses_task_kinds_it_cannot_serve(arch, spec, kinds):
    with pytest.raises(ValueError, match=f"serves task kinds {kinds} only"):
        models.build(arch, spec)


def test_bad_specs_widths_and_sizes_are_named():
    with pytest.raises(ValueError, match="num_classes >= 2"):
        models.build("segnet", dense(tasks=[TaskSpec("seg", "segmentation")]), width=2)
    with pytest.raises(ValueError, match="no tasks"):
        models.build("resnet18", labels(tasks=()))
    for width in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="width must be a positive integer"):
            models.build("segnet", dense(), width=width)
    with pytest.raises(ValueError, match="divisible by 32, got 40x64"):
        models.build("segnet", dense(40, 64), width=2)
    with pytest.raises(ValueError, match="divisible by 8, got 36x36"):
        models.build("deeplabv3", dense(36, 36), width=2)


def test_forward_checks_the_input_size(built):
    with pytest.raises(ValueError, match="divisible by 32, got 48x64"):
        built["mtan"][0](torch.randn(2, 3, 48, 64))
    with pytest.raises(ValueError, match=r"built for images \(1, 28, 28\)"):
        built["small-cnn"][0](torch.randn(2, 1, 32, 32))


@given(
    h=st.integers(1, 3).map(lambda k: 32 * k),
    w=st.integers(1, 3).map(lambda k: 32 * k),
    batch=st.integers(1, 2),
)
def test_segnet_outputs_have_the_input_size(built, h, w, batch):
    model, spec, _ = built["segnet"]
    with torch.no_grad():
        outputs = model(torch.randn(batch, 3, h, w))
    for task in spec.tasks:
        assert tuple(outputs[task.name].shape) == expected_shape(task, batch, (h, w))


@given(st.lists(st.sampled_from(LABEL_TASKS), min_size=1, max_size=3, unique=True))
def test_heads_for_exactly_the_tasks_of_the_spec_in_its_order(tasks):
    spec = labels((1, 16, 16), tasks)
    model = models.build("small-cnn", spec, width=2)
    assert model.task_names == spec.task_names
    assert tuple(model(torch.randn(2, 1, 16, 16))) == spec.task_names


def test_resnet_backbones_are_torchvisions_at_width_64():
    with torch.device("meta"):
        ours50 = deeplab.DilatedResNet50()
        theirs50 = torchvision.models.resnet50(replace_stride_with_dilation=[False, True, True])
    theirs = {k: v.shape for k, v in theirs50.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in ours50.state_dict().items()} == theirs
    convs = [
        (n, m.stride, m.dilation, m.padding)
        for n, m in theirs50.named_modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    assert convs == [
        (n, m.stride, m.dilation, m.padding)
        for n, m in ours50.named_modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    theirs18 = torchvision.models.resnet18().eval()
    ours18 = ResNetBackbone(18).eval()
    ours18.load_state_dict({k: v for k, v in theirs18.state_dict().items() if "fc." not in k})
    x = torch.randn(1, 3, 64, 64)
    trunk = torch.nn.Sequential(*list(theirs18.children())[:-2])
    with torch.no_grad():
        torch.testing.assert_close(ours18(x), trunk(x))


def test_pretrained_weights_load_from_a_local_file_and_are_checked(tmp_path):
    spec = labels()
    imagenet = torchvision.models.resnet18().state_dict()  # includes the ImageNet classifier fc.
    torch.save(imagenet, tmp_path / "resnet18.pth")
    model = models.build("resnet18", spec, pretrained=tmp_path / "resnet18.pth")
    for name, value in model.encoder.resnet.state_dict().items():
        assert torch.equal(value, imagenet[name]), name

    torch.save(ResNetBackbone(18, 8).state_dict(), tmp_path / "narrow.pth")
    with pytest.raises(ValueError, match=r"shape mismatches \d+ \[bn1.bias: file \(8,\)"):
        models.build("resnet18", spec, pretrained=tmp_path / "narrow.pth")
    wrong = {"conv1.weight": imagenet["conv1.weight"], "head.weight": torch.zeros(3)}
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match=r"missing keys \d+ \[bn1.*unexpected keys 1 \[head"):
        models.build("resnet18", spec, pretrained=tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="does not exist"):
        models.build("resnet18", spec, pretrained=tmp_path / "absent.pth")


def test_deeplab_loads_its_resnet50_and_the_registry_guards_pretrained(tmp_path):
    spec = dense(32, 32)
    source = deeplab.DilatedResNet50(width=4).state_dict()
    torch.save({**source, "fc.weight": torch.zeros(1000, 128)}, tmp_path / "r50.pth")
    model = deeplab.build(spec, width=4, pretrained=tmp_path / "r50.pth")
    for name, value in model.encoder.state_dict().items():
        assert torch.equal(value, source[name]), name
    with pytest.raises(ValueError, match="at width 64 only"):
        models.build("deeplabv3", spec, width=4, pretrained=tmp_path / "r50.pth")
    with pytest.raises(ValueError, match=r"no ImageNet backbone.*deeplabv3, resnet18"):
        models.build("segnet", spec, pretrained=tmp_path / "r50.pth")


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_segnet_at_width_64_has_mtans_published_parameter_counts():
    nyuv2 = (
        TaskSpec("segmentation", "segmentation", 13),
        TaskSpec("depth", "depth"),
        TaskSpec("normal", "normal"),
    )
    with torch.device("meta"):
        single = models.build("segnet", dense(288, 384, nyuv2[:1]))
        mtan = models.build("mtan", dense(288, 384, nyuv2))
    # MTAN's scripts divide every count by that of its single-task SegNet (semantic, 13
    # classes): 24981069, printed as "REL"
    assert parameter_count(single) == 24_981_069
    # MTAN's layout shares the attention layers f between the tasks (one copy) and has 3 UW
    # scales; its paper lists 1.77 times the single-task SegNet for it on NYUv2
    f = [parameter_count(a.enc_f) + parameter_count(a.dec_f) for a in mtan.attention.values()]
    shared_f_layout = parameter_count(mtan) - sum(f[1:]) + 3
    assert round(shared_f_layout / 24_981_069, 2) == 1.77

"""Per-sample gradients: both BatchNorm choices are what they claim and leave the model alone."""

import pytest
import torch
from grad_fixtures import LOSSES, tiny_batch, tiny_cnn
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl.gradients.per_sample import per_sample_gradients, per_sample_losses


def _by_hand(model, x, targets, tasks, samples):
    """One backward pass per (task, sample), each sample alone as a batch of one."""
    rows = []
    for t in tasks:
        for i in samples:
            out = model(x[i : i + 1])
            loss = LOSSES[t](out[t], targets[t][i : i + 1])
            grads = torch.autograd.grad(loss, model.shared_parameters())
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
    return torch.stack(rows).reshape(len(tasks), len(samples), -1)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(2, 4))
def test_without_batchnorm_both_modes_are_the_batch_of_one_gradient(seed, batch):
    model = tiny_cnn(seed, batchnorm=False)
    x, targets = tiny_batch(seed, batch)
    expected = _by_hand(model, x, targets, list(LOSSES), range(batch))
    for mode in ("in-batch", "independent"):
        got = per_sample_gradients(model, x, targets, LOSSES, mode=mode)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_with_batchnorm_the_modes_differ_as_documented():
    model = tiny_cnn(0, batchnorm=True)
    x, targets = tiny_batch(1, 4)
    bn = model.encoder[1]
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    saved = [b.clone() for b in model.buffers()]
    tasks, samples = ["depth", "seg"], [3, 1]

    independent = per_sample_gradients(
        model, x, targets, LOSSES, mode="independent", tasks=tasks, samples=samples
    )
    model.eval()
    torch.testing.assert_close(independent, _by_hand(model, x, targets, tasks, samples))

    model.eval()  # in-batch switches to train mode itself, and back
    in_batch = per_sample_gradients(
        model, x, targets, LOSSES, mode="in-batch", tasks=tasks, samples=samples
    )
    assert not model.training
    batched = per_sample_gradients(
        model, x, targets, LOSSES, mode="in-batch", tasks=tasks, samples=samples, method="batched"
    )
    torch.testing.assert_close(batched, in_batch, rtol=1e-12, atol=1e-14)
    model.train()
    matrix = per_sample_losses(model, x, targets, LOSSES, tasks)
    for a in range(len(tasks)):
        for b, i in enumerate(samples):
            grads = torch.autograd.grad(matrix[a, i], model.shared_parameters(), retain_graph=True)
            torch.testing.assert_close(in_batch[a, b], torch.cat([g.reshape(-1) for g in grads]))
    assert not torch.allclose(in_batch, independent)
    for buffer, before in zip(model.buffers(), saved, strict=True):
        if buffer.dtype.is_floating_point:
            assert not torch.equal(buffer, before)  # the explicit forward above moved them ...
    model2 = tiny_cnn(0, batchnorm=True)
    before = [b.clone() for b in model2.buffers()]
    per_sample_gradients(model2, x, targets, LOSSES, mode="in-batch")
    per_sample_gradients(model2, x, targets, LOSSES, mode="independent")
    for buffer, saved_value in zip(model2.buffers(), before, strict=True):
        assert torch.equal(buffer, saved_value)  # ... but per_sample_gradients leaves them alone


def test_bad_input_is_named():
    model = tiny_cnn(0, batchnorm=False)
    x, targets = tiny_batch(0, 2)
    with pytest.raises(ValueError, match="valid modes: in-batch, independent"):
        per_sample_gradients(model, x, targets, LOSSES, mode="vmap")
    with pytest.raises(ValueError, match=r"indices in \[0, 2\)"):
        per_sample_gradients(model, x, targets, LOSSES, mode="in-batch", samples=[2])
    with pytest.raises(ValueError, match="valid tasks: seg, depth, attr"):
        per_sample_gradients(model, x, targets, LOSSES, mode="in-batch", tasks=["normal"])
    with pytest.raises(ValueError, match="no entry in losses"):
        per_sample_gradients(model, x, targets, {"seg": LOSSES["seg"]}, mode="in-batch")

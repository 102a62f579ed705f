"""Random scale-crop and horizontal flip of dense samples, as in the CAGrad/LibMTL code.

That code (``RandomScaleCrop`` for NYUv2, ``RandomScaleCropCityScapes``) is what the paper's
footnote points to. One draw picks a zoom ``s`` from ``scales`` (default 1.0, 1.2, 1.5), a crop of
``(int(H / s), int(W / s))`` pixels at a uniformly random position, and a flip with probability
``flip_prob``. The crop is resized back to ``(H, W)``: the image bilinearly (``align_corners=True``,
as there), labels, depth and normals by nearest neighbour, so ignored labels stay -1, invalid
depth stays 0 and every normal stays a stored normal (unit or all-zero). A flip mirrors every
array along the width and negates the normals' x component.

Depth after a zoom by ``s`` (``depth_scaling``):

- ``"divide"`` (default, faithful): ``depth / s``, as the reference code does for every dataset.
  Right for metric depth (NYUv2: zooming in by ``s`` brings the scene ``s`` times closer), wrong
  for inverse depth (Cityscapes' disparity-like labels grow when the scene comes closer);
- ``"multiply"``: ``depth * s``, the corrected rule for inverse depth / disparity;
- ``"none"``: depth values unchanged.

Deviation from the reference code: there normals are resized bilinearly and not renormalised,
which mixes valid and invalid (zero) normals at their borders; here they are resized by nearest
neighbour, with the index rule ``r * h // H`` (PyTorch's ``nearest`` up to float rounding).
A zoom of 1 without flip returns the sample unchanged (bit for bit). Inputs are CPU tensors.

Randomness is explicit: :func:`sample_generator` derives a NumPy generator from
``(seed, epoch, index)`` alone, so a sample's augmentation does not depend on worker processes,
the order of loading or what was drawn before, and a resumed epoch repeats exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_SCALES = (1.0, 1.2, 1.5)
DEPTH_SCALINGS = ("divide", "multiply", "none")
DENSE_KINDS = ("segmentation", "depth", "normal")


@dataclass(frozen=True)
class CropParams:
    """One draw: zoom ``scale``, crop corner ``(top, left)`` and whether to flip."""

    scale: float
    top: int
    left: int
    flip: bool


def sample_generator(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample's augmentation, a pure function of ``(seed, epoch, index)``."""
    return np.random.default_rng(np.random.SeedSequence([seed, epoch, index]))


def check_depth_scaling(depth_scaling: str) -> str:
    if depth_scaling not in DEPTH_SCALINGS:
        raise ValueError(
            f"unknown depth_scaling {depth_scaling!r}; valid: {', '.join(DEPTH_SCALINGS)} "
            "('divide' is the reference code's rule, 'multiply' the one for inverse depth)"
        )
    return depth_scaling


def crop_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """``(int(H / s), int(W / s))``, at least one pixel."""
    return max(1, int(height / scale)), max(1, int(width / scale))


def draw_params(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    scales: Sequence[float] = DEFAULT_SCALES,
    flip_prob: float = 0.5,
) -> CropParams:
    """A zoom from ``scales``, a uniform crop corner inside the image, a flip with ``flip_prob``."""
    scale = float(scales[int(rng.integers(len(scales)))])
    h, w = crop_size(height, width, scale)
    top = int(rng.integers(height - h + 1))
    left = int(rng.integers(width - w + 1))
    return CropParams(scale, top, left, bool(rng.random() < flip_prob))


def _nearest(x: Tensor, params: CropParams) -> Tensor:
    """Nearest-neighbour crop-and-resize over the last two axes (any dtype, exact values).

    Output row r reads crop row ``r * h // H`` (likewise for columns); gathered with NumPy,
    which is several times faster than ``index_select`` on CPU tensors.
    """
    height, width = x.shape[-2:]
    h, w = crop_size(height, width, params.scale)
    rows = np.arange(height) * h // height + params.top
    cols = np.arange(width) * w // width + params.left
    return torch.from_numpy(np.take(np.take(x.numpy(), rows, axis=-2), cols, axis=-1))


def _bilinear(x: Tensor, params: CropParams) -> Tensor:
    height, width = x.shape[-2:]
    h, w = crop_size(height, width, params.scale)
    crop = x[None, :, params.top : params.top + h, params.left : params.left + w]
    return F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=True)[0]


def _scale_depth(depth: Tensor, scale: float, depth_scaling: str) -> Tensor:
    if depth_scaling == "divide":
        return depth / scale
    if depth_scaling == "multiply":
        return depth * scale
    return depth


def apply_params(
    image: Tensor,
    targets: Mapping[str, Tensor],
    kinds: Mapping[str, str],
    params: CropParams,
    *,
    depth_scaling: str = "divide",
) -> tuple[Tensor, dict[str, Tensor]]:
    """Crop, resize back and flip ``image`` (C, H, W) and its dense ``targets`` (kinds by task).

    Targets: segmentation (H, W), depth (1, H, W), normal (3, H, W). The inputs are never
    modified (with a zoom of 1 and no flip they are returned as they are).
    """
    check_depth_scaling(depth_scaling)
    for task in targets:
        if kinds[task] not in DENSE_KINDS:
            raise ValueError(
                f"task {task!r} of kind {kinds[task]!r} cannot be scale-cropped; "
                f"dense kinds: {', '.join(DENSE_KINDS)}"
            )
    out = dict(targets)
    if params.scale != 1.0:
        image = _bilinear(image, params)
        for task, target in targets.items():
            out[task] = _nearest(target, params)
            if kinds[task] == "depth":
                out[task] = _scale_depth(out[task], params.scale, depth_scaling)
    if params.flip:
        image = torch.flip(image, dims=[-1])
        for task, target in out.items():
            out[task] = torch.flip(target, dims=[-1])
            if kinds[task] == "normal":
                out[task][0] = -out[task][0]
    return image, out


@dataclass(frozen=True)
class RandomScaleCropFlip:
    """The augmentation of the dense datasets: :func:`draw_params` then :func:`apply_params`."""

    scales: tuple[float, ...] = DEFAULT_SCALES
    flip_prob: float = 0.5
    depth_scaling: str = "divide"

    def __post_init__(self) -> None:
        check_depth_scaling(self.depth_scaling)
        if not self.scales or min(self.scales) < 1.0:
            raise ValueError(f"scales must be non-empty and >= 1 (a zoom in), got {self.scales}")

    def __call__(
        self,
        image: Tensor,
        targets: Mapping[str, Tensor],
        kinds: Mapping[str, str],
        rng: np.random.Generator,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        height, width = image.shape[-2:]
        params = draw_params(height, width, rng, scales=self.scales, flip_prob=self.flip_prob)
        return apply_params(image, targets, kinds, params, depth_scaling=self.depth_scaling)

"""What the benchmark scripts share: the small hard-parameter-sharing CNN and timing options."""

from __future__ import annotations

import argparse

import torch
from torch import nn

from mtl.model import HardParameterSharing


def small_cnn(tasks: int, width: int = 8, depth: int = 3) -> HardParameterSharing:
    """``depth`` 3x3 convolutions with BatchNorm and ReLU (``width`` channels), shared; one 1x1
    convolution (depth) head per task."""
    layers: list[nn.Module] = []
    for c_in in (3, *[width] * (depth - 1)):
        layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    return HardParameterSharing(
        nn.Sequential(*layers), {f"t{t}": nn.Conv2d(width, 1, 1) for t in range(tasks)}
    )


def add_timing_arguments(parser: argparse.ArgumentParser, reps: int) -> None:
    """``--reps`` (at least 20: medians) and ``--threads`` (torch's intra-op threads)."""
    parser.add_argument("--reps", type=int, default=reps, help="timed repetitions (>= 20)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's choice)"
    )


def apply_timing_arguments(args: argparse.Namespace) -> None:
    """Set the thread count and refuse fewer than 20 repetitions."""
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.reps < 20:
        raise ValueError(f"--reps={args.reps}: medians need at least 20 repetitions")

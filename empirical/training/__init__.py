"""Training the vision networks with any method of :mod:`mtl.methods` and any optimizer of
:mod:`mtl.optim`: :class:`RunConfig`, :func:`run` and ``mtlp train`` (:mod:`.cli`)."""

from empirical.training.config import RunConfig, load
from empirical.training.loop import run

__all__ = ["RunConfig", "load", "run"]

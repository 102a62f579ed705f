"""Synthetic multi-task studies: the claims of the theory checked numerically on small problems.

``sim.problems`` holds hard-parameter-sharing problems (shared parameters plus one head per
task) that return their per-task losses as one tensor, so that any loss weighting, gradient
aggregator or ``mtl.optim`` optimizer can be run on them: a smooth quadratic family with
controllable conditioning and the paper's "depth in two units" toy network (App. A2). The
studies built on them (loss-scale invariance checks, the CAGrad toy, sweeps over optimizer,
learning rate, method, loss scale and seed) import ``mtl`` and never ``theory`` or ``empirical``.
"""

"""Numbers through the NUMPY backend of the rules: the runs the numeric law tests compare."""

import numpy as np
from hypothesis import strategies as st

from mtl.optim import NUMPY, get_rule

grad = st.floats(0.05, 5.0).flatmap(lambda m: st.sampled_from([m, -m]))
"""A gradient entry bounded away from 0 (so sign-based rules are defined), either sign."""


def run(name, seqs, hps, per_task=False, **common):
    """Updates of rule ``name`` on per-task gradient sequences (summed unless per_task)."""
    rule = get_rule(name)
    hps = [{**common, **hp} for hp in hps]
    p = np.array(1.0)
    states = [rule.init(NUMPY, p, **{**rule.defaults, **hp}) for hp in hps]
    out = []
    for k, gs in enumerate(zip(*seqs, strict=True), start=1):
        if per_task:
            new = p + sum(
                rule.step(NUMPY, p, np.array(g), s, k, **hp) - p
                for g, s, hp in zip(gs, states, hps, strict=True)
            )
        else:
            new = rule.step(NUMPY, p, np.array(sum(gs)), states[0], k, **hps[0])
        out.append(float(new - p))
        p = new
    return np.array(out)

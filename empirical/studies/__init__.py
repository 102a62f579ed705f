"""The vision studies behind one registry; each module offers ``add_arguments`` and ``run``.

Every study takes ``--scale quick|cpu|full``: ``quick`` is the smoke scale CI runs end to end,
``cpu`` the scale whose verdicts carry intervals and that finishes in about an hour on two
cores (generated images and the multi-digits real-data row), ``full`` the paper's protocol on
the real datasets (a GPU cluster; ``--dry-run`` lists its runs and their cost).
"""

from __future__ import annotations

STUDIES: dict[str, tuple[str, str]] = {
    "optimizer-sweep": (
        "empirical.studies.optimizer_sweep",
        "Adam vs SGD+momentum vs signSGD across MTL methods and learning rates (Tables 2, A2-A7)",
    ),
    "gradient-conflicts": (
        "empirical.studies.gradient_conflicts",
        "inter-task vs inter-sample gradient directions and magnitudes during EW training",
    ),
    "corruptions": (
        "empirical.studies.corruptions",
        "robustness of MTL vs STL features to the 15 image corruptions x 5 severities",
    ),
    "hybrids": (
        "empirical.studies.hybrids",
        "Adam on the heads with SGD on the backbone and the reverse: a causal test",
    ),
    "stl-methods": (
        "empirical.studies.stl_methods",
        "MTL methods applied to groups of samples of one task (the paper's outlook)",
    ),
}

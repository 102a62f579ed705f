"""The vision studies (Cityscapes, NYUv2, CelebA): datasets, models, training, analysis.

Planned in the project's issues; it builds on :mod:`mtl` only.
"""

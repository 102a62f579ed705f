"""The report, rebuilt from stored results beside the published numbers it reproduces.

Planned in the project's issues; it reads results, it does not train.
"""

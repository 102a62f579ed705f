"""The README's tables name exactly what the code registers."""

import re
from pathlib import Path

import mtl.methods
import mtl.optim

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_lists_every_method_with_its_kind():
    rows = dict(
        re.findall(r"^\| `([a-z0-9-]+)` \| (weighting|aggregator|optimizer) \|", README, re.M)
    )
    assert set(rows) == set(mtl.methods.NAMES)
    for name, kind in rows.items():
        assert mtl.methods.REGISTRY[name].kind == kind, name


def test_readme_lists_every_optimizer():
    for name in mtl.optim.NAMES:
        assert f"`{name}`" in README

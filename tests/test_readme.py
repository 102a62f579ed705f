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


def test_the_library_snippet_runs_as_written_and_prints_p_minus_lr(capsys):
    import sympy

    start = README.index("## The library at a glance")
    (code,) = re.findall(r"```python\n(.*?)```", README[start:], re.S)[:1]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    p, lr = namespace["p"], namespace["lr"]
    assert sympy.simplify(namespace["update"] - (p - lr)) == 0
    assert capsys.readouterr().out.strip() == "-lr + p"
    model = namespace["model"]
    assert set(model.task_names) == {"depth", "segmentation", "normal"}
    assert namespace["record"].task_grads is not None  # the per-task step had its gradients

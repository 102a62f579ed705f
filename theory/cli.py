"""``mtlp theory``: the statements with their verdicts, and the atlas.

``--json`` prints ``{"statements": [...], "atlas": {...}}`` (the atlas with its levers table);
``--out DIR`` also writes that JSON as ``theory.json``, and the atlas as ``atlas.md``,
``atlas.tex`` and ``atlas.html``.
The folder is checked before the derivations run (:func:`mtl.io.completing`): a folder of another
command or configuration is refused, and a complete one is left as it is.

The text output wraps to the terminal's width: per topic (invariances, clipping, mixed precision,
schedules) and per statement its id and verdict, then the claim as tested, indented.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from mtl.io import atomic_write_text, check_output_dir, completing, is_complete
from theory.statement import topic

RECORD = {"command": "theory"}
"""The configuration record of an ``--out`` folder (the derivations take no options)."""
VERDICT_TEXT = {
    "holds": "holds (proved)",
    "fails": "fails (counterexample)",
    "holds-within-bound": "holds within a bound",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtlp theory", description="Derivations of loss-scale invariance, as code."
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--out", type=Path, help="also write theory.json, atlas.md, atlas.tex, atlas.html here"
    )
    return parser


def plan(argv: list[str]) -> list[tuple[Path, dict[str, Any]]]:
    """The folder and configuration record ``main(argv)`` would write (nothing is run)."""
    args = _parser().parse_args(argv)
    return [] if args.out is None else [(args.out, dict(RECORD))]


def tested_claim(claim: str, verdict: str) -> str:
    """The claim as the proposition tested: a claim worded as its failure ('... is not
    invariant ...') beside the verdict ``fails`` reads as a double negative, so it is shown as
    the invariance that fails."""
    if verdict == "fails" and " is not invariant" in claim:
        return claim.replace(" is not invariant", " is invariant", 1)
    return claim


def render(found: list, width: int) -> str:
    """Each statement as ``id  verdict`` and its claim wrapped to ``width`` columns, under a
    ``-- topic --`` line where the topic changes."""
    lines: list[str] = []
    current = None
    for s in found:
        if topic(s.id) != current:
            current = topic(s.id)
            lines += ([""] if lines else []) + [f"-- {current} --"]
        lines.append(f"{s.id}  [{VERDICT_TEXT.get(s.verdict, s.verdict)}]")
        claim = tested_claim(s.claim, s.verdict)
        lines += textwrap.wrap(
            claim, width=max(width, 40), initial_indent="    ", subsequent_indent="    "
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.out is not None:
        try:
            check_output_dir(args.out, RECORD)
        except ValueError as err:
            parser.exit(2, f"{parser.prog}: error: {err}\n")
        if is_complete(args.out, RECORD):
            print(f"{args.out}: complete; nothing to do")
            return 0
    from theory import atlas as atlas_mod
    from theory.statements import statements

    found = statements()
    table, levers = atlas_mod.atlas(), atlas_mod.levers()
    payload = json.dumps(
        {"statements": [s.to_json() for s in found], "atlas": atlas_mod.to_json(table, levers)},
        indent=2,
    )
    if args.json:
        print(payload)
    else:
        width = shutil.get_terminal_size((100, 24)).columns - 1
        print(render(found, width))
        print()
        print(atlas_mod.to_markdown(table, levers), end="")
    if args.out is not None:
        with completing(args.out, RECORD) as out:
            paths = atlas_mod.write(table, out, levers)
            paths.append(atomic_write_text(out / "theory.json", payload + "\n"))
        if not args.json:
            for path in paths:
                print(f"wrote {path}")
    sys.stdout.flush()
    return 0

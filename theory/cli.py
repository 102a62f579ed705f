"""``mtlp theory``: the statements with their verdicts, and the atlas.

``--json`` prints ``{"statements": [...], "atlas": {...}}``; ``--out DIR`` also writes that
JSON as ``theory.json``, and the atlas as ``atlas.md``, ``atlas.tex`` and ``atlas.html``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mtl.io import atomic_write_text
from theory import atlas as atlas_mod
from theory.statements import statements


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtlp theory", description="Derivations of loss-scale invariance, as code."
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--out", type=Path, help="also write theory.json, atlas.md, atlas.tex, atlas.html here"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    found = statements()
    table = atlas_mod.atlas()
    payload = json.dumps(
        {"statements": [s.to_json() for s in found], "atlas": atlas_mod.to_json(table)}, indent=2
    )
    if args.json:
        print(payload)
    else:
        width = max(len(s.id) for s in found)
        for s in found:
            print(f"{s.id:<{width}}  {s.verdict:<18}  {s.claim}")
        print()
        print(atlas_mod.to_markdown(table), end="")
    if args.out is not None:
        paths = atlas_mod.write(table, args.out)
        paths.append(atomic_write_text(args.out / "theory.json", payload + "\n"))
        for path in paths:
            if not args.json:
                print(f"wrote {path}")
    return 0

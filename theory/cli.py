"""``mtlp theory``: the statements with their verdicts, and the atlas.

``--json`` prints ``{"statements": [...], "atlas": {...}}``; ``--out DIR`` also writes
``atlas.md`` and ``atlas.tex``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from theory import atlas as atlas_mod
from theory.statements import statements


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtlp theory", description="Derivations of loss-scale invariance, as code."
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--out", type=Path, help="also write atlas.md and atlas.tex here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    found = statements()
    table = atlas_mod.atlas()
    if args.json:
        payload = {
            "statements": [s.to_json() for s in found],
            "atlas": atlas_mod.to_json(table),
        }
        print(json.dumps(payload, indent=2))
    else:
        width = max(len(s.id) for s in found)
        for s in found:
            print(f"{s.id:<{width}}  {s.verdict:<18}  {s.claim}")
        print()
        print(atlas_mod.to_markdown(table), end="")
    if args.out is not None:
        for path in atlas_mod.write(table, args.out):
            if not args.json:
                print(f"wrote {path}")
    return 0

"""``mtlp report RESULTS_DIR [--out DIR]``: rebuild the report from stored results, no training."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mtlp report", description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a folder written by `mtlp reproduce`")
    parser.add_argument("--out", type=Path, help="report folder (default: RESULTS/report)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from paper.report import build, summary_lines

    try:
        page = build(args.results, args.out)
    except FileNotFoundError as err:
        parser.exit(2, f"mtlp report: error: {err}\n")
    print("\n".join(summary_lines(args.results)))
    print(f"report: {page}")
    return 0

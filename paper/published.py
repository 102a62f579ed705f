"""The paper's published tables (``paper/published/*.csv``), read into plain Python objects.

See ``paper/published/README.md`` for their provenance (arXiv:2311.04698 v5, Tables 2, A2, A4–A7).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).with_name("published")

# name -> (file, dataset, network)
TABLES: dict[str, tuple[str, str, str]] = {
    "A4": ("table_a4_cityscapes_segnet.csv", "cityscapes", "segnet"),
    "A5": ("table_a5_cityscapes_deeplabv3.csv", "cityscapes", "deeplabv3"),
    "A6": ("table_a6_nyuv2_segnet.csv", "nyuv2", "segnet"),
    "A7": ("table_a7_nyuv2_deeplabv3.csv", "nyuv2", "deeplabv3"),
}
PARETO_COUNTS = "table_2_pareto_counts.csv"
PARETO_COUNTS_PER_METHOD = "table_a2_pareto_counts_per_method.csv"
LABELS = ("method", "optimizer", "lr", "delta_m", "delta_m_std")


@dataclass(frozen=True)
class Row:
    """One line of a results table: its labels, metric values and the printed strings."""

    method: str
    optimizer: str
    lr: float | None
    metrics: dict[str, float]
    printed: dict[str, str]
    delta_m: float | None
    delta_m_std: float | None


@dataclass(frozen=True)
class Table:
    name: str
    dataset: str
    network: str
    metric_keys: tuple[str, ...]
    rows: tuple[Row, ...]

    @property
    def baseline(self) -> Row:
        """The single-task (STL) row."""
        return next(row for row in self.rows if row.method == "STL")

    @property
    def runs(self) -> tuple[Row, ...]:
        """Every multi-task row."""
        return tuple(row for row in self.rows if row.method != "STL")


def table(name: str) -> Table:
    """Published Table ``name`` (``"A4"`` ... ``"A7"``)."""
    if name not in TABLES:
        raise ValueError(f"unknown published table {name!r}; valid: {', '.join(TABLES)}")
    file, dataset, network = TABLES[name]
    records = _read(file)
    keys = tuple(k for k in records[0] if k not in LABELS)
    rows = tuple(
        Row(
            method=r["method"],
            optimizer=r["optimizer"],
            lr=_number(r["lr"]),
            metrics={k: float(r[k]) for k in keys},
            printed={k: r[k] for k in keys},
            delta_m=_number(r["delta_m"]),
            delta_m_std=_number(r["delta_m_std"]),
        )
        for r in records
    )
    return Table(name, dataset, network, keys, rows)


def pareto_counts() -> list[dict[str, str | int]]:
    """Table 2: per dataset, network and optimizer, ``po_full`` and ``po_versus_other``."""
    return [_with_ints(r) for r in _read(PARETO_COUNTS)]


def pareto_counts_per_method() -> list[dict[str, str | int]]:
    """Table A2: the ``po_full`` count per method (``-`` read as 0) and ``total_printed``."""
    return [_with_ints(r) for r in _read(PARETO_COUNTS_PER_METHOD)]


def _read(file: str) -> list[dict[str, str]]:
    path = DATA / file
    if not path.is_file():
        raise FileNotFoundError(
            f"missing {path}: the published tables live in paper/published/ "
            f"({', '.join(f for f, _, _ in TABLES.values())}, {PARETO_COUNTS}, "
            f"{PARETO_COUNTS_PER_METHOD})"
        )
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: str) -> float | None:
    return float(text) if text else None


def _with_ints(record: dict[str, str]) -> dict[str, str | int]:
    labels = ("dataset", "network", "optimizer")
    return {k: v if k in labels else int(v) for k, v in record.items()}

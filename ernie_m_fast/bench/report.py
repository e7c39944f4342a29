"""How every benchmark shows its results: a progress bar while it runs, then a table for people,
JSON for machines (`--json`) and a bar chart (`--plot out.png`, needs matplotlib: the `bench` extra)."""

from __future__ import annotations

import json
import math
import sys
from typing import Iterable, Optional, Sequence


def progress(iterable: Iterable, desc: str, total: Optional[int] = None):
    """tqdm over `iterable` on stderr when tqdm is installed and stderr is a terminal-like stream."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr, dynamic_ncols=True)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:.1f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str]]) -> str:
    """A fixed-width table; `columns` are (key, heading) pairs, missing values print as '-'."""
    cells = [[heading for _, heading in columns]] + [[_cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _finite(value):
    """JSON has no NaN or inf: they become null (and the tests reject null where a number belongs)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(result: dict) -> str:
    return json.dumps(_finite(result), indent=2, default=str)


def bar_chart(path: str, labels: Sequence[str], series: dict[str, Sequence[float]], ylabel: str, title: str) -> None:
    """Grouped bars: one group per label, one bar per series (e.g. per engine or backend)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--plot needs matplotlib: pip install 'ernie-m-fast[bench]'") from exc
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(labels) * max(1, len(series))), 4.0))
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=name)
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_output_arguments(parser) -> None:
    """--json and --plot, the same on every benchmark."""
    parser.add_argument("--json", action="store_true", help="print the full result as JSON instead of a table")
    parser.add_argument("--plot", metavar="OUT.png", default=None,
                        help="also draw the result as a bar chart (needs matplotlib)")


def emit(result: dict, table: str, args) -> None:
    """Print JSON or the table, per --json."""
    print(to_json(result) if getattr(args, "json", False) else table)

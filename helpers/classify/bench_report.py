"""Running the book: the table of ``make gpu-bench``'s figures for the page Running the book, from ``results/bench/*.json``.

Every figure is shown with the device that measured it and the date, beside the target of
issue 14 where there is one. Until a GPU run has been kept, the table says that the GPU figures
are still to be taken: a CPU run of tiny stand-ins checks that the benchmark works, it measures
nothing about the study's models. It reads files only: rendering the page runs no benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.paths import REPO_ROOT, results_root

FIELDS = ("device", "device_type", "date", "small", "torch", "figures")
STILL_TO_TAKE = ("GPU figures are still to be taken: run `make gpu-bench` on a GPU machine and keep its "
                 "`results/bench/<gpu>.json`. The rows below come from CPU runs of tiny stand-ins: "
                 "they show that the benchmark runs, not how fast the study's models are.")


class BenchReportError(ValueError):
    """A benchmark file that cannot be read; the message names it and says what to do."""


KEPT = REPO_ROOT / "book" / "measured" / "bench"  # the runs committed with the book, shown in every build


def bench_files(folder: Path | None = None) -> list[Path]:
    """The files of ``folder``; by default this machine's runs (``results/bench``) and the runs kept
    with the book (``book/measured/bench``: copy a GPU run's file there to publish it)."""
    folders = [Path(folder)] if folder else [results_root("bench"), KEPT]
    return sorted(p for f in folders if f.is_dir() for p in f.glob("*.json"))


def load_bench_file(path: Path) -> dict:
    """One ``make gpu-bench`` file, checked for the fields the table needs."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchReportError(f"results/bench/{Path(path).name} cannot be read ({exc}): delete it and "
                               f"run `make gpu-bench` again") from None
    missing = [f for f in FIELDS if not isinstance(data, dict) or f not in data]
    if missing:
        raise BenchReportError(f"results/bench/{Path(path).name} lacks {', '.join(missing)}: it was not "
                               f"written by `make gpu-bench`; delete it and run that again")
    return data


def _value(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _met(row: dict) -> str:
    return {True: "yes", False: "no", None: "-"}[row.get("met")]


def bench_rows(folder: Path | None = None) -> list[dict]:
    """One row per figure of every file: the figure, its value and unit, the target, whether it
    is met, and the device and date that measured it."""
    rows = []
    for path in bench_files(folder):
        data = load_bench_file(path)
        device = data["device"] + (" (small stand-ins)" if data["small"] else "")
        rows += [dict(figure=f["what"], value=_value(f["value"]), unit=f["unit"], target=f["target"] or "-",
                      met=_met(f), device=device, date=data["date"], gpu=data["device_type"] == "cuda")
                 for f in data["figures"]]
    return rows


def bench_table(folder: Path | None = None) -> str:
    """The Markdown of the page's section: a line on what is still missing, and the table."""
    rows = bench_rows(folder)
    if not rows:
        return ("GPU figures are still to be taken: no benchmark has been kept yet. `make gpu-bench` "
                "writes `results/bench/<device>.json`; copy it to `book/measured/bench/` to show it here.")
    lines = [] if any(r["gpu"] and "small" not in r["device"] for r in rows) else [STILL_TO_TAKE, ""]
    lines += ["| figure | value | unit | target (issue 14: one H100, ConvNeXt-XL at 384, SD 2.0 at 768 and 25 steps) | met | device | date |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['figure']} | {r['value']} | {r['unit']} | {r['target']} | {r['met']} | {r['device']} | "
              f"{r['date']} |" for r in rows]
    return "\n".join(lines)

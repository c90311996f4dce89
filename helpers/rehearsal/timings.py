"""Every chapter, rehearsed: the measured time to run of each chapter and step, from the rehearsals' reports.

``make rehearse`` writes ``book/measured/rehearsal-<profile>[-full].json``; the page *Running the
book* shows them here as tables, each with the device that measured it, so that "time to run" is a
measurement with its machine named, never a guess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..core.paths import REPO_ROOT

MEASURED = REPO_ROOT / "book" / "measured"


def reports(folder: Path = MEASURED) -> list[dict]:
    """Every rehearsal report in ``folder``, CPU rehearsals first."""
    found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("rehearsal-*.json"))]
    return sorted(found, key=lambda r: (r.get("full_size", False), r["profile"]))


def summary(found: list[dict]) -> pd.DataFrame:
    """One row per rehearsal: where, with which settings, and its minutes in total."""
    rows = [{"profile": r["profile"], "full size": "yes" if r.get("full_size") else "no",
             "device": r["device"], "date": r.get("date", ""), "BOOK_SET": r.get("book_set", ""),
             "set-up (min)": round(r.get("setup_seconds", 0) / 60, 1),
             "make run (min)": round(r.get("run_seconds", 0) / 60, 1) if "run_seconds" in r else "-",
             "book build (min)": round(r.get("build_seconds", 0) / 60, 1)} for r in found]
    return pd.DataFrame(rows)


def step_table(report: dict) -> pd.DataFrame:
    """Seconds of each step of one rehearsal, in the order they ran."""
    rows = [{"step": f"python -m helpers {s['command']}", "processes": s.get("processes", 1),
             "seconds": round(float(s["seconds"]), 1)} for s in report.get("steps", [])]
    return pd.DataFrame(rows)


def chapter_table(report: dict) -> pd.DataFrame:
    """Seconds each page took to execute in the rehearsal's book build."""
    chapters = report.get("chapters", {})
    return pd.DataFrame({"page": list(chapters), "seconds": list(chapters.values())})


def show(folder: Path = MEASURED) -> None:
    """What the page prints: every report, and what is still to be measured."""
    from IPython.display import display  # a notebook kernel only (the book extra)

    found = reports(folder)
    if not found:
        print("No rehearsal has been measured yet: run `make rehearse PROFILE=course`.")
    else:
        display(summary(found).set_index("profile"))
        for r in found:
            print(f"\n{r['profile']}{' (full size)' if r.get('full_size') else ''} on {r['device']}: {r.get('note', '')}")
            display(step_table(r).set_index("step"))
            display(chapter_table(r).set_index("page"))
    if not any(r.get("full_size") for r in found):
        print("\nGPU figures (make rehearse PROFILE=paper FULL_SIZE=1 on a GPU box) are still to be "
              "taken: no GPU was available to this book's builders yet.")


def page_time(page: str, folder: Path = MEASURED) -> str:
    """A chapter's measured time to run, for its "Time to run" line (plain text: a glued text shows
    no Markdown): each rehearsal's seconds for ``page`` with the device, date and settings that
    measured it, or that it is still unmeasured."""
    found = [r for r in reports(folder) if page in r.get("chapters", {})]
    if not found:
        return ("not measured yet: make rehearse PROFILE=course times every chapter, and the page "
                "Running the book shows it.")
    parts = [f"{r['chapters'][page] / 60:.1f} min "
             + ("to render (its steps ran before, in make run) " if "run_seconds" in r else "")
             + f"in the {'full-size ' if r.get('full_size') else ''}{r['profile']} rehearsal on {r['device']} "
             f"({r.get('date', '')}" + ("" if r.get("full_size") else ", shrunken settings of BOOK_SET") + ")"
             for r in found]
    return "; ".join(parts) + ". The page Running the book has every step's time."

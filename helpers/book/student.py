"""Every chapter: the students' copy of the book, with every ``{solution}`` taken out (``make student``).

``python -m helpers.book.student`` writes ``student/notebooks/``: each chapter notebook with every
``{solution}`` block removed from its markdown cells and every output cleared, everything else as it
is (the ``{exercise}`` blocks, the code, the cells' ids and metadata). Beside them it copies what a
build needs, ``_config.yml``, ``_toc.yml`` and ``book/`` (its pages' solutions taken out too), so
that ``jupyter-book build student`` makes the students' HTML book in ``student/_build/html``
(``make student`` runs both).

A solution is a fenced directive, backticks or colons (MyST), closed by a fence of the same
character at least as long. One that is never closed would swallow the rest of its cell: it is
refused, naming the notebook and the cell, and nothing is written.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
from pathlib import Path

from helpers.core.files import atomic_write_text
from helpers.core.paths import REPO_ROOT

# A fence line: indent, three or more backticks or colons, then the info string ("{solution} ch1-ex1").
_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\s*(?P<info>.*?)\s*$")
# What a build needs besides the notebooks (_toc.yml names the chapters and book/ the other pages).
BOOK_FILES = ("_config.yml", "_toc.yml")
BOOK_DIRS = ("book",)


class SolutionError(ValueError):
    """A ``{solution}`` the students' copy cannot take out: never closed, or spread over several cells."""


def _directive(line: str) -> tuple[str, str] | None:
    """(fence, directive name) of a line that opens a directive, e.g. ("```", "solution")."""
    m = _FENCE.match(line)
    if not m or not m["info"].startswith("{"):
        return None
    return m["fence"], m["info"][1:].split("}", 1)[0]


def _closes(line: str, fence: str) -> bool:
    m = _FENCE.match(line)
    return bool(m) and not m["info"] and m["fence"][0] == fence[0] and len(m["fence"]) >= len(fence)


def strip_solutions(text: str, where: str = "markdown") -> str:
    """``text`` without its ``{solution}`` blocks, each with the blank lines that followed it.

    :raises SolutionError: a solution is never closed, or is a ``{solution-start}`` ... ``{solution-end}``
        pair; the message names ``where`` and the line.
    """
    lines, kept, i, removed_last = text.splitlines(keepends=True), [], 0, False
    while i < len(lines):
        opened = _directive(lines[i])
        if opened is None or not opened[1].startswith("solution"):
            kept.append(lines[i])
            i, removed_last = i + 1, False
            continue
        fence, name = opened
        if name != "solution":
            raise SolutionError(f"{where}, line {i + 1}: {{{name}}} (a solution spread over "
                                        "several cells) is not supported: write one {solution} block")
        end = next((j for j in range(i + 1, len(lines)) if _closes(lines[j], fence)), None)
        if end is None:
            raise SolutionError(f"{where}, line {i + 1}: the {{solution}} opened here is never "
                                        f"closed (no line of {fence} after it)")
        i, removed_last = end + 1, True
        while i < len(lines) and not lines[i].strip() and (not kept or not kept[-1].strip()):
            i += 1  # the blank lines after the block, where the text before it already ends on one
    result = "".join(kept)
    if removed_last:  # a solution ended the text: so does what came before it, without its blank lines
        result = result.rstrip("\n") + ("\n" if text.endswith("\n") and result.strip() else "")
    return result


def student_notebook(nb: dict, where: str) -> dict:
    """A copy of notebook ``nb`` (its JSON) with no solutions and no outputs; ``where`` names it in errors."""
    nb = copy.deepcopy(nb)
    for number, cell in enumerate(nb["cells"], 1):
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            stripped = strip_solutions(source, f"{where}, cell {number} (markdown)")
            if stripped != source:
                cell["source"] = stripped.splitlines(keepends=True)
        elif cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def _student_pages(repo: Path) -> dict[str, str]:
    """The prose pages under ``book/`` (path relative to ``repo`` -> text) that hold a solution, without it."""
    pages = {}
    for name in BOOK_DIRS:
        for path in sorted((repo / name).rglob("*.md")):
            where = path.relative_to(repo).as_posix()
            text = path.read_text(encoding="utf-8")
            stripped = strip_solutions(text, where)
            if stripped != text:
                pages[where] = stripped
    return pages


def write_student_book(repo: Path = REPO_ROOT, out: Path | None = None) -> list[Path]:
    """Write the students' copy of the book at ``repo`` to ``out`` (default ``repo/student``).

    Every chapter notebook (``notebooks/*.ipynb``) and page of ``book/`` is checked before anything
    is written, so a bad one leaves ``out`` as it was. The notebooks and ``book/`` are written
    afresh (a page's ``{solution}``, such as the course guide's example, goes too); ``out/_build``
    (the students' build and its execution cache) is kept. Returns the notebooks written.
    """
    repo = Path(repo)
    out = Path(out) if out is not None else repo / "student"
    notebooks = {path.name: student_notebook(json.loads(path.read_text(encoding="utf-8")),
                                             path.relative_to(repo).as_posix())
                 for path in sorted((repo / "notebooks").glob("*.ipynb"))}
    pages = _student_pages(repo)
    shutil.rmtree(out / "notebooks", ignore_errors=True)
    written = []
    for name, nb in notebooks.items():
        written.append(out / "notebooks" / name)
        atomic_write_text(written[-1], json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    for name in BOOK_FILES:
        shutil.copy2(repo / name, out / name)
    for name in BOOK_DIRS:
        shutil.rmtree(out / name, ignore_errors=True)
        shutil.copytree(repo / name, out / name)
    for where, text in pages.items():
        atomic_write_text(out / where, text)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.book.student", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "student",
                        help="the students' book folder (default: student/ beside the book)")
    args = parser.parse_args(argv)
    written = write_student_book(REPO_ROOT, args.out)
    print(f"wrote {len(written)} solution-free notebooks to {args.out / 'notebooks'}; "
          f"build the students' book with: jupyter-book build {args.out}")


if __name__ == "__main__":
    main()

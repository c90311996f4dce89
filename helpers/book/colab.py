"""Every chapter: the first cell that installs the book when a chapter is opened in Google Colab.

Each page of the rendered book has a launch button that opens its notebook in Colab, where there
is neither the repository nor the ``helpers`` package. So every chapter starts with one cell that,
on Colab only, clones the book's repository (the ``repository: url`` of ``_config.yml``), installs
it, moves into its ``notebooks/`` folder and picks the ``course`` profile on a GPU runtime (``smoke``
without one). Anywhere else the cell does nothing, and the rendered page never shows it (its
``remove-cell`` tag).

On Colab the install keeps Colab's own torch (built for its GPU driver) instead of the locked one:
the one place where the book does not install its tested versions, and the cell says so.

``python -m helpers.book.colab`` writes the cell into every chapter from ``_config.yml``, so the
repository's address is one setting; ``tests/test_colab.py`` checks that the notebooks agree with it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from ..core.files import atomic_write_text
from ..core.paths import REPO_ROOT

TAG = "remove-cell"
MARK = "# Google Colab: install the book"  # the cell's first line, how it is found again
TEMPLATE = '''# Google Colab: install the book (this cell does nothing anywhere else, and the book's pages hide it).
import os
import sys

if "google.colab" in sys.modules:
    import subprocess

    import torch

    BOOK = "/content/genimg-book"
    if not os.path.exists(BOOK):
        subprocess.run(["git", "clone", "--depth", "1", "{url}", BOOK], check=True)
        # Colab's own torch stays (it matches the GPU's driver); the rest as pyproject.toml allows
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", BOOK], check=True)
    sys.path.insert(0, BOOK)
    os.chdir(f"{BOOK}/notebooks")
    os.environ.setdefault("BOOK_PROFILE", "course" if torch.cuda.is_available() else "smoke")
    print("profile:", os.environ["BOOK_PROFILE"], "(Runtime > Change runtime type > GPU for course)")'''


def repository_url(config: Path = REPO_ROOT / "_config.yml") -> str:
    """``repository: url`` of the book's _config.yml (read without a YAML library: one key)."""
    text = config.read_text(encoding="utf-8")
    block = re.search(r"^repository:\s*\n((?:[ \t]+.*\n?)+)", text, re.M)
    url = re.search(r"^\s+url:\s*(\S+)", block.group(1), re.M) if block else None
    if url is None:
        raise ValueError(f"{config.name} has no `repository: url:` setting; add the address of the "
                         f"book's repository there (Colab's launch buttons and install cell use it)")
    return url.group(1).strip("'\"")


def install_source(url: str) -> str:
    return TEMPLATE.replace("{url}", url)


def chapters(root: Path = REPO_ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def with_install_cell(notebook: dict, source: str) -> dict:
    """The notebook with its Colab cell first: replaced where there is one, added where not."""
    cell = {"cell_type": "code", "execution_count": None, "id": "colab-install",
            "metadata": {"tags": [TAG]}, "outputs": [], "source": source.splitlines(keepends=True)}
    cells = [c for c in notebook["cells"] if not "".join(c.get("source", "")).startswith(MARK)]
    return notebook | {"cells": [cell, *cells]}


def main(argv: list[str] | None = None) -> int:
    source = install_source(repository_url())
    for path in chapters():
        notebook = json.loads(path.read_text(encoding="utf-8"))
        atomic_write_text(path, json.dumps(with_install_cell(notebook, source), indent=1, ensure_ascii=False) + "\n")
        print(f"{path.relative_to(REPO_ROOT)}: Colab cell written")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every chapter: ``make lock`` -- the locked versions of the tested environment.

pyproject.toml states what the book needs as lower bounds; two installs months apart would then get
different diffusers, timm or pyiqa releases, and a chapter's numbers could change with them. So
``make`` installs with ``requirements.lock`` as pip constraints: every package at the version the
book was tested with. ``make lock`` refreshes it: a scratch environment gets the newest versions
pyproject.toml allows, its ``pip freeze`` becomes the lock, and environment.yml (conda, a GPU box)
is rewritten to pin the same versions. tests/test_environment.py checks that the three agree.

Usage: ``python tools/lock.py PYTHON`` (the scratch environment's interpreter). Standard library
only: it runs with the system's python3, before any environment exists.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
HEADER = ("# The tested environment: `make` installs with these as pip constraints (-c requirements.lock).\n"
          "# Refresh with `make lock` (tools/lock.py); tests/test_environment.py keeps it in step with\n"
          "# pyproject.toml and environment.yml. Linux wheels: packages missing elsewhere (nvidia-*) are\n"
          "# simply not installed there.\n")
ENV_HEADER = """# A conda environment for a GPU box: conda env create -f environment.yml && conda activate genimg-book
# It installs this book's package (helpers) at the locked versions of requirements.lock (`make lock`
# writes both files); tests/test_environment.py keeps them in step with pyproject.toml.
name: genimg-book
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""


def canonical(name: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def direct_requirements() -> list[str]:
    """The names pyproject.toml lists: the package's dependencies and its `book` extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["book"]
    return [re.match(r"[A-Za-z0-9_.-]+", r).group(0) for r in reqs]


def read_lock(text: str) -> dict[str, str]:
    """``{canonical name: version}`` of a ``name==version`` file (comments and blanks skipped)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            if not sep:
                raise ValueError(f"requirements.lock: {line!r} is not NAME==VERSION; run `make lock` again")
            pins[canonical(name)] = version.strip()
    return pins


def environment_text(pins: dict[str, str]) -> str:
    lines = [f"      - {name}=={pins[canonical(name)]}" for name in direct_requirements()]
    return ENV_HEADER + "\n".join(lines + ["      - -c requirements.lock", "      - -e ."]) + "\n"


def main(python: str) -> None:
    frozen = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable"],
                            check=True, capture_output=True, text=True).stdout
    pins = read_lock(frozen)
    missing = [n for n in direct_requirements() if canonical(n) not in pins]
    if missing:
        sys.exit(f"the environment of {python} lacks {', '.join(missing)}: install the book into it first")
    LOCK.write_text(HEADER + "".join(f"{line}\n" for line in frozen.splitlines() if line.strip()), encoding="utf-8")
    ENVIRONMENT.write_text(environment_text(pins), encoding="utf-8")
    print(f"requirements.lock: {len(pins)} packages; environment.yml pins {len(direct_requirements())} of them")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tools/lock.py PYTHON (the interpreter of the environment to lock)")
    main(sys.argv[1])

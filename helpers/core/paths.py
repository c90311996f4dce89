"""Every chapter: where things live: one data root, one results root, and paths that never leave them."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "BOOK_DATA_ROOT"
RESULTS_ENV = "BOOK_RESULTS_ROOT"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_base() -> Path:
    # An editable install (the README's set-up) keeps data beside the book; otherwise the cwd.
    return REPO_ROOT if (REPO_ROOT / "_toc.yml").exists() else Path.cwd()


def data_root() -> Path:
    """All downloaded and generated data: $BOOK_DATA_ROOT, else ``data/`` beside the book."""
    return Path(os.environ.get(DATA_ENV) or _default_base() / "data").resolve()


def _results_base() -> Path:
    return Path(os.environ.get(RESULTS_ENV) or _default_base() / "results").resolve()


def results_root(profile_name: str) -> Path:
    """Results of one profile: $BOOK_RESULTS_ROOT/<profile>, else ``results/<profile>``."""
    return (_results_base() / profile_name).resolve()


def profile_dir(profile_name: str) -> Path:
    return data_root() / profile_name


def coco_dir(profile) -> Path:
    """COCO 2017 files (shared by ``course`` and ``paper``); smoke's stand-in lives apart."""
    if profile.real_source == "standin":
        return profile_dir(profile.name) / "standin_coco"
    return data_root() / "coco"


def shown(text: str) -> str:
    """``text`` as the book shows it: every path under the data root, the results root or the book
    written relative to it (``$BOOK_DATA_ROOT/...``, ``$BOOK_RESULTS_ROOT/...``, ``notebooks/...``),
    so that no page shows the absolute paths of the machine that built it. For a command's argument
    and for whatever a step printed."""
    text = str(text)
    for root, name in ((data_root(), "$" + DATA_ENV), (_results_base(), "$" + RESULTS_ENV)):
        text = text.replace(str(root) + os.sep, f"{name}/").replace(str(root), name)
    return text.replace(str(REPO_ROOT) + os.sep, "")


def tiny_model_dir() -> Path:
    return data_root() / "models" / "tiny-sd2"


class UnsafePathError(ValueError):
    """A path in a manifest or plan that would leave the data root."""


def inside(root: Path, relative: str | os.PathLike) -> Path:
    """``root / relative``, refusing absolute paths and ``..`` that would leave ``root``."""
    rel = Path(relative)
    if rel.is_absolute() or str(relative).startswith(("/", "\\")):
        raise UnsafePathError(f"path {str(relative)!r} is absolute; manifests hold paths relative to {root}")
    root = Path(root).resolve()
    full = (root / rel).resolve()
    if full != root and root not in full.parents:
        raise UnsafePathError(f"path {str(relative)!r} leaves the data root {root}")
    return full


def relative_to_root(root: Path, path: Path) -> str:
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()

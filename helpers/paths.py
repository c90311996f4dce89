"""Where things live: one data root, one results root, and paths that never leave them."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "BOOK_DATA_ROOT"
RESULTS_ENV = "BOOK_RESULTS_ROOT"
REPO_ROOT = Path(__file__).resolve().parents[1]


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, someone else's; anything else: keep to be safe
        return True
    return True


def sweep_stale_tmp(folder: Path) -> list[Path]:
    """Remove the ``.NAME.PID.tmp`` files of :func:`atomic_write_bytes` whose writer is dead.

    A writer killed (``kill -9``, a lost node) between writing and renaming leaves its temporary
    file behind, and no later write has the same name (the pid differs). Files of a live writer
    are kept: another process may be writing them now. Returns the files removed.
    """
    removed = []
    for path in sorted(Path(folder).rglob(".*.tmp")) if Path(folder).is_dir() else []:
        parts = path.name.rsplit(".", 2)  # ".NAME", "PID", "tmp"
        if len(parts) == 3 and parts[1].isdigit() and path.is_file() and not _pid_alive(int(parts[1])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed

"""Every chapter: files written so that a killed writer never leaves half a file, and names made safe.

A reader sees the old file or the whole new one (write to ``.NAME.PID.tmp``, fsync, rename); the
leftovers of writers killed between the two are swept by :func:`sweep_stale_tmp`. Every step of the
book writes its outputs through these, so a stopped run resumes from whole files only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` of a checkpoint, atomically (a stop mid-save keeps the previous epoch's)."""
    import torch  # lazily: the plumbing stays light for processes that never save a tensor

    atomic_write(path, lambda fh: torch.save(obj, fh))


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


def slug(text: str) -> str:
    """A name safe in a file name or a glue key: lower case, letters and digits, runs of anything
    else as one ``-`` (``"DALL-E 2"`` -> ``"dall-e-2"``, ``"Places2 (pconv)"`` -> ``"places2-pconv"``)."""
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-.") or "set"


def list_files(folder: Path) -> list[Path]:
    """The files of ``folder`` in name order: not its subfolders, no hidden files (``.x``, the
    temporary files of a writer). The one listing of a user's folder of images."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith("."))

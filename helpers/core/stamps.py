"""Every chapter: settings stamps; finished work is reused only if it was made with the same settings."""

from __future__ import annotations

import json
from pathlib import Path

from .files import atomic_write_text


class StaleOutputError(RuntimeError):
    """Outputs on disk were made with other settings than the ones asked for now."""


def check_or_write(path: Path, settings: dict, what: str) -> None:
    """First run: record ``settings``. Later runs: refuse to mix outputs of other settings."""
    path = Path(path)
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if diff:
            changes = ", ".join(f"{k}: {a!r} on disk, {b!r} now" for k, (a, b) in diff.items())
            raise StaleOutputError(
                f"the {what} under {path.parent} were made with other settings ({changes}). "
                f"Delete {path.parent} to make them again with the new settings, or set "
                f"BOOK_DATA_ROOT to another folder to keep both.")
        return
    atomic_write_text(path, json.dumps(settings, indent=2, sort_keys=True))

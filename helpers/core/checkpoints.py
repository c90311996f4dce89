"""Chapters 3-5: checkpoints the user gives by path or URL, fetched once, loaded safely, layout checked.

``load_state(source, key)`` returns the state dict found under ``key`` of a checkpoint dict (or the
dict itself when ``key`` is None), always with ``torch.load(weights_only=True)``.
``load_into(model, state, what)`` loads it strictly and, on a mismatch, names the missing and
unexpected keys and the shapes that differ, so a user who picked the wrong file learns why.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch

from .download import download_file
from .paths import data_root


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be found, read, or does not fit the model; the message says why."""


def checkpoint_dir() -> Path:
    return data_root() / "checkpoints"


def fetch(source: str | Path) -> Path:
    """A local path as it is, or a URL downloaded (resumable, atomic) into the checkpoints folder."""
    text = str(source)
    if urlparse(text).scheme in ("http", "https"):
        return download_file(text, checkpoint_dir() / Path(urlparse(text).path).name, show_progress=True)
    path = Path(text).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the path of the downloaded file "
                              f"or its URL (the book's Chapter 3 lists where the public ones are)")
    return path


def load_state(source: str | Path, key: str | None) -> dict:
    path = fetch(source)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, unsafe globals: all mean "not this file"
        raise CheckpointError(f"{path} cannot be read as a PyTorch checkpoint with weights_only=True "
                              f"({type(exc).__name__}: {str(exc)[:300]})") from None
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            found = sorted(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
            raise CheckpointError(f"{path}: expected a checkpoint dict with the weights under {key!r}; "
                                  f"found {found}")
        obj = obj[key]
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise CheckpointError(f"{path}: the weights{f' under {key!r}' if key else ''} are not a state dict")
    return obj


def load_into(model: torch.nn.Module, state: dict, what: str) -> torch.nn.Module:
    """Strict loading with a readable report of every mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or shapes:
        def show(items):
            return ", ".join(items[:8]) + (f" and {len(items) - 8} more" if len(items) > 8 else "")
        lines = [f"this checkpoint does not fit {what}:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {show(missing)}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {show(unexpected)}")
        if shapes:
            lines.append(f"  different shapes ({len(shapes)}): {show(shapes)}")
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state, strict=True)
    return model

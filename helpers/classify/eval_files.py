"""Chapters 4-5: an evaluation's files: its name and folder, what it was computed from, reading it back.

``results/<profile>/eval/<name>/`` holds ``predictions.csv`` (path, label, p_generated,
predicted) and ``metrics.json``. The name comes from the checkpoint's run folder, the set and the
re-encoding (``paper-best_test``, ``paper-best_test_jpeg75``, ``paper-best_dalle2``,
``vgg16-best_test``). A rerun with the same checkpoint file, images and settings reads the files
back instead of predicting again; a changed checkpoint or image is predicted anew.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from ..core.files import atomic_write_text, slug
from ..core.paths import results_root
from ..data import manifest as mf
from .classifier import EvaluateError, is_url
from .reencode import parse_reencode


def eval_name(checkpoint, set_name: str, reencode=None) -> str:
    """``<run>-<checkpoint>_<set>[_jpeg75|_resize256]``, e.g. ``paper-best_test_jpeg75``."""
    path = Path(urlparse(str(checkpoint)).path) if is_url(checkpoint) else Path(checkpoint)
    name = f"{slug(path.parent.name or 'checkpoint')}-{slug(path.stem)}_{slug(set_name)}"
    spec = parse_reencode(reencode)
    return name + (f"_{spec[0]}{spec[1]}" if spec else "")


def eval_dir(profile, name: str) -> Path:
    return results_root(profile.name) / "eval" / name


def fingerprint(files: list[Path]) -> str:
    """Which files, of which size and time: changes when a step rewrites an image."""
    h = hashlib.sha256()
    for f in files:
        try:
            st = f.stat()
            h.update(f"{f}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{f}\tmissing\n".encode())
    return h.hexdigest()


def checkpoint_stamp(checkpoint) -> dict:
    """The checkpoint's file, size and time (a URL by itself): a new file is evaluated anew."""
    if is_url(checkpoint):
        return {"checkpoint": str(checkpoint)}
    st = Path(checkpoint).stat()
    return {"checkpoint": str(checkpoint), "checkpoint_bytes": st.st_size,
            "checkpoint_mtime_ns": st.st_mtime_ns}


def _result(folder: Path, saved: dict, predictions: pd.DataFrame) -> dict:
    return {"name": saved["name"], "dir": folder, "metrics": saved["metrics"],
            "accuracy_ci95": saved.get("accuracy_ci95"), "settings": saved["settings"],
            "skipped": saved.get("skipped", []), "predictions": predictions, "speed": saved.get("speed")}


def load_result(profile, name: str) -> dict:
    """An evaluation written before: ``name``, ``dir``, ``metrics``, ``predictions``, ``skipped``..."""
    folder = eval_dir(profile, name)
    metrics_file, predictions_file = folder / "metrics.json", folder / "predictions.csv"
    if not (metrics_file.exists() and predictions_file.exists()):
        raise EvaluateError(f"{folder} holds no finished evaluation: run `python -m helpers evaluate "
                            f"--profile {profile.name}` first")
    saved = json.loads(metrics_file.read_text(encoding="utf-8"))
    return _result(folder, saved, pd.read_csv(predictions_file, dtype={"path": str}))


def reusable(profile, name: str, settings: dict) -> dict | None:
    """The evaluation ``name`` on disk when it was computed with exactly ``settings``, else None."""
    folder = eval_dir(profile, name)
    if not ((folder / "metrics.json").exists() and (folder / "predictions.csv").exists()):
        return None
    old = load_result(profile, name)
    return old if old["settings"] == settings else None


def save_result(profile, saved: dict, predictions: pd.DataFrame) -> dict:
    """Write ``predictions.csv``, then ``metrics.json`` (``saved``), each whole; the result."""
    folder = eval_dir(profile, saved["name"])
    mf.write_csv(predictions, folder / "predictions.csv")
    atomic_write_text(folder / "metrics.json", json.dumps(saved, indent=2))
    return _result(folder, saved, predictions) | {"reused": False}


def two_class_metrics(result: dict) -> dict:
    """Balanced accuracy, ROC-AUC and AP of an evaluation, refused for a set of one class.

    A folder of generated images alone has one meaningful number, the share called generated
    (what the paper's 4.74% and 91.19% are); the others compare the two classes.
    """
    m = result["metrics"]
    if m["n_real"] == 0 or m["n_generated"] == 0:
        present = "generated" if m["n_generated"] else "real"
        raise EvaluateError(
            f"{result['name']} holds only {present} images: its accuracy ({m['accuracy']:.2%}) is the "
            f"share called {present}. Balanced accuracy, ROC-AUC and AP need both classes: evaluate "
            f"again with --real test (the study's real test photographs) or --real DIR (photographs "
            f"matched to these images)")
    return {k: m[k] for k in ("balanced_accuracy", "roc_auc", "average_precision", "accuracy_real",
                              "accuracy_generated", "n_real", "n_generated")}

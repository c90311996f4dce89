"""Chapters 4-5: which images an evaluation scores: the test split, or folders of one class.

The test split (originals only, as the manifest lists them) is the study's own: every image must
be scored, and a damaged one stops the evaluation with the command that re-makes it. A folder
(the paper's DALL-E 2 and Imagen sets, matched photographs) is a user's: all its files get one
label, and a file that cannot be read is skipped with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from ..core.files import list_files
from ..core.paths import data_root, inside
from ..data import manifest as mf
from .classifier import EvaluateError
from .dataset import DamagedImage, check_files, damaged_error, damaged_message


@dataclass(frozen=True)
class Part:
    """Images of one origin: ``frame`` (``path``, ``label``), and whether they come from a user's
    folder (brought to the common format, bad files skipped) or are the study's own."""

    frame: pd.DataFrame
    from_folder: bool

    @cached_property
    def files(self) -> list[Path]:
        return [image_file(p) for p in self.frame["path"]]


def test_images(profile) -> pd.DataFrame:
    """The manifest's test split, originals only: ``path`` (relative to the data root), ``label``."""
    frame = mf.originals(mf.load(profile.name))
    test = frame[frame["split"] == "test"]
    if test.empty:
        raise EvaluateError(f"{mf.manifest_path(profile.name)} has no test images: run the data and "
                            f"generate steps first (`python -m helpers data --profile {profile.name}`)")
    return pd.DataFrame({"path": test["path"].astype(str).tolist(),
                         "label": test["label"].astype(int).tolist()})


def folder_images(folder, label: str) -> pd.DataFrame:
    """Every file of ``folder`` (not its subfolders, no hidden files), all with one ``label``."""
    if label not in mf.LABELS:
        raise EvaluateError(f"give the label of the folder's images: 'generated' or 'real', not {label!r}")
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise EvaluateError(f"{folder} is not a folder; --images takes a folder of images")
    files = list_files(folder)
    if not files:
        raise EvaluateError(f"{folder} holds no files; put the images to evaluate in it")
    return pd.DataFrame({"path": [str(p) for p in files], "label": mf.LABELS[label]})


def image_file(path: str) -> Path:
    """A ``predictions.csv`` path as a file: absolute as it is, else under the data root."""
    p = Path(path)
    return p if p.is_absolute() else inside(data_root(), path)


def image_parts(profile, images_dir, label, real) -> tuple[str, list[Part], dict]:
    """The set's name, its parts, and what it holds (for the evaluation's settings)."""
    if images_dir is None:
        if label is not None or real is not None:
            raise EvaluateError("--label and --real go with --images DIR: the test split's labels come "
                                "from the manifest")
        return "test", [Part(test_images(profile), False)], {"images": "test split"}
    if label is None:
        raise EvaluateError(f"give --label generated or --label real for the images of {images_dir}")
    folder = Path(images_dir).expanduser().resolve()
    name = "folder-test" if folder.name == "test" else folder.name
    held = {"images": str(folder), "label": label, "real": None}
    parts = [Part(folder_images(folder, label), True)]
    if real is None:
        return name, parts, held
    if label != "generated":
        raise EvaluateError("--real adds photographs to a folder of generated images; this folder "
                            "is labelled real already")
    if str(real) == "test":
        photos = test_images(profile)
        parts.append(Part(photos[photos["label"] == mf.LABELS["real"]].reset_index(drop=True), False))
        return f"{name}+real-test", parts, held | {"real": "test split"}
    real_folder = Path(real).expanduser().resolve()
    parts.append(Part(folder_images(real_folder, "real"), True))
    return f"{name}+real-{real_folder.name}", parts, held | {"real": str(real_folder)}


def check_prepared(files: list[Path], skipped: dict | None = None) -> None:
    """The study's own test images must all be scored: a damaged one stops the evaluation with the
    file and the command that re-makes it (a user's folder skips its bad files instead). Without
    ``skipped``, a cheap check of the files' headers; with it, the files the decoder refused."""
    try:
        if skipped is None:
            check_files(files)
        else:
            bad = [f for f in files if f in skipped]
            if bad:
                raise damaged_error(bad[0], skipped[bad[0]])
    except DamagedImage as exc:
        raise EvaluateError(f"{damaged_message(exc)}. Nothing was written for this evaluation.") from None

"""Chapter 1: the manifest, one CSV per profile listing every image of the study and its origin.

Each step writes its own part (``parts/real.csv``, ``parts/generated.csv``, later ones for
augmentation) and the manifest ``<data>/<profile>/manifest.csv`` is rebuilt from the parts.
Paths are relative to the data root and are refused if they would leave it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.files import atomic_write_text
from ..core.paths import data_root, inside, profile_dir

COLUMNS = [
    "path", "label", "label_name", "split", "source", "caption", "coco_id", "seed", "model_id",
    "scheduler", "steps", "guidance", "orig_width", "orig_height",
    "aug_source", "aug_ops", "aug_params",  # augmented images (Chapter 2): source path, techniques, values
    "replaces",  # a reserve photograph: the coco_id of the planned one it stands in for (missing on the server)
]
LABELS = {"real": 0, "generated": 1}
SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest that does not hold what the study needs; the message names the file."""


def manifest_path(profile_name: str) -> Path:
    return profile_dir(profile_name) / "manifest.csv"


def part_path(profile_name: str, part: str) -> Path:
    return profile_dir(profile_name) / "parts" / f"{part}.csv"


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(index=False))


def write_part(profile_name: str, part: str, rows: pd.DataFrame) -> Path:
    """Write one step's rows and rebuild the profile's manifest from all parts."""
    rows = rows.reindex(columns=COLUMNS)
    validate(rows, root=data_root(), check_files=True, where=f"part '{part}'")
    write_csv(rows, part_path(profile_name, part))
    parts = sorted((profile_dir(profile_name) / "parts").glob("*.csv"), key=lambda p: (p.stem != "real", p.stem))
    frame = pd.concat([pd.read_csv(p, keep_default_na=False) for p in parts], ignore_index=True)
    frame = frame.reindex(columns=COLUMNS)
    path = manifest_path(profile_name)
    validate(frame, root=data_root(), check_files=False, where=str(path))
    write_csv(frame, path)
    return path


def validate(frame: pd.DataFrame, *, root: Path, check_files: bool = True, where: str = "manifest") -> None:
    """Refuse a manifest with missing columns, bad labels or splits, duplicate or unsafe paths."""
    missing = [c for c in ("path", "label", "split", "source") if c not in frame.columns]
    if missing:
        raise ManifestError(f"{where}: missing columns {missing}")
    bad_label = frame[~frame["label"].isin(list(LABELS.values()))]
    if len(bad_label):
        raise ManifestError(f"{where}: label must be 0 (real) or 1 (generated); row {bad_label.index[0]} "
                            f"has {bad_label['label'].iloc[0]!r}")
    if "label_name" in frame.columns:
        wrong = frame[frame["label_name"].map(LABELS) != frame["label"]]
        if len(wrong):
            raise ManifestError(f"{where}: label and label_name disagree at row {wrong.index[0]}")
    bad_split = frame[~frame["split"].isin(SPLITS)]
    if len(bad_split):
        raise ManifestError(f"{where}: split must be one of {SPLITS}; got {bad_split['split'].iloc[0]!r}")
    dup = frame["path"][frame["path"].duplicated()]
    if len(dup):
        raise ManifestError(f"{where}: path {dup.iloc[0]!r} is listed twice")
    sources = [s for s in frame["aug_source"] if isinstance(s, str) and s] if "aug_source" in frame else []
    for rel in list(frame["path"]) + sources:
        try:
            full = inside(root, rel)
        except ValueError as exc:
            raise ManifestError(f"{where}: {exc}") from None
        if check_files and not full.is_file():
            raise ManifestError(f"{where}: {rel} does not exist under {root}; run the step that makes it")


def load(profile_name: str, *, check_files: bool = True) -> pd.DataFrame:
    """The profile's manifest, validated; a clear error when a step has not run yet."""
    path = manifest_path(profile_name)
    if not path.exists():
        raise ManifestError(f"{path} does not exist: run `python -m helpers data --profile "
                            f"{profile_name}` (and `generate`) first")
    frame = _typed(pd.read_csv(path, keep_default_na=False))
    validate(frame, root=data_root(), check_files=check_files, where=str(path))
    return frame


INT_COLUMNS = ("label", "coco_id", "seed", "steps", "orig_width", "orig_height", "replaces")
FLOAT_COLUMNS = ("guidance",)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers back from text: blank cells (a real image has no seed) become <NA>, ints stay exact."""
    for col in INT_COLUMNS + FLOAT_COLUMNS:
        if col in frame.columns:
            values = [pd.NA if str(v) == "" else v for v in frame[col]]
            frame[col] = pd.array([pd.NA if v is pd.NA else (int(v) if col in INT_COLUMNS else float(v))
                                   for v in values], dtype="Int64" if col in INT_COLUMNS else "Float64")
    return frame


AUGMENTED_SOURCES = ("augmented", "augmented-real")


def originals(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of photographs and generations themselves, without Chapter 2's augmented copies."""
    return frame[~frame["source"].isin(AUGMENTED_SOURCES)]


def counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Images per split and class, as the chapter's table."""
    table = frame.pivot_table(index="label_name", columns="split", values="path", aggfunc="count",
                              fill_value=0)
    table = table.reindex(columns=[s for s in SPLITS if s in table.columns])
    table["total"] = table.sum(axis=1)
    table.index.name, table.columns.name = "class", "split"
    return table

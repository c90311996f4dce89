"""Chapter 4: the image side of the training-time controls: COCO's JPEG quality measured, and the processing chains.

Photographs reach the common format compressed twice (COCO's own JPEG, then the book's) and
downscaled by about 0.8 (a 640x480 photograph's centre square to 384 px); generated images are
compressed once (lossless PNG, then the book's JPEG) and downscaled by 0.5 (768 px to 384). The
controls of Chapter 4 remove one difference at a time, so this module provides:

- the JPEG quality of the raw COCO files, estimated from their quantization tables (the tables
  Pillow's libjpeg writes at each quality are the reference; a file whose tables equal one of
  them exactly is counted as such), and their chroma subsampling;
- :func:`jpeg_round_trip`: an image compressed at a given quality and decoded again (the
  compression-matched control gives generated images a COCO-like first compression);
- :func:`rescale`: the centred square that a downscale by ``factor`` keeps at ``side`` pixels
  (the scale-matched control and the null classifier's halves).

The step that applies them and writes the control sets is :mod:`helpers.classify.controls_data`.
"""

from __future__ import annotations

import io
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, JpegImagePlugin

from ..core.paths import data_root, profile_dir
from ..core.profiles import CONTROLS  # the controls' names: data folders and runs (train --variant NAME)
from . import manifest as mf

SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}  # Pillow's get_sampling codes


class ControlError(RuntimeError):
    """A control cannot be made or read; the message says which file or step is missing."""


def controls_dir(profile) -> Path:
    return profile_dir(profile.name) / "controls"


def rows_path(profile, name: str) -> Path:
    """``<data>/<profile>/controls/<name>/rows.csv``: the control's images, manifest-like."""
    return controls_dir(profile) / name / "rows.csv"


def measured_path(profile) -> Path:
    return controls_dir(profile) / "measured.json"


def check_name(name: str) -> str:
    if name not in CONTROLS:
        raise ControlError(f"unknown control {name!r}; valid: {', '.join(CONTROLS)}")
    return name


def control_list(profile) -> list[str]:
    """The profile's ``controls`` setting as a list, each name checked."""
    return [check_name(n.strip()) for n in profile.controls.split(",") if n.strip()]


def load_rows(profile, name: str) -> pd.DataFrame:
    """A control's rows (path relative to the data root, label, split, ...), its files checked."""
    path = rows_path(profile, check_name(name))
    if not path.exists():
        raise ControlError(f"{path} does not exist: run `python -m helpers controls --profile "
                           f"{profile.name}` first, which makes the control's images")
    frame = pd.read_csv(path, keep_default_na=False)
    try:
        mf.validate(frame, root=data_root(), check_files=True, where=str(path))
    except mf.ManifestError as exc:
        raise ControlError(f"{exc}; `python -m helpers controls --profile {profile.name}` makes it again") from None
    return frame


# -- the JPEG quality of a file, from its quantization tables ------------------------------------

@cache
def reference_tables() -> dict[int, tuple[tuple[int, ...], ...]]:
    """``{quality: (luma table, chroma table)}`` as Pillow's libjpeg writes them at qualities 1-100
    (the IJG standard tables, scaled), read back the way a file's tables are read."""
    tables = {}
    tile = Image.new("RGB", (16, 16), (128, 128, 128))
    for q in range(1, 101):
        buf = io.BytesIO()
        tile.save(buf, format="JPEG", quality=q)
        with Image.open(buf) as img:
            tables[q] = tuple(tuple(img.quantization[k]) for k in sorted(img.quantization))
    return tables


def estimate_quality(path) -> dict:
    """``quality`` (1-100, nearest IJG scaling of the file's tables), ``exact`` (the tables equal
    that quality's), ``subsampling`` ("4:2:0"...); ``quality`` None for a file that is no JPEG.
    Reads the header only."""
    with Image.open(path) as img:
        if img.format != "JPEG" or not getattr(img, "quantization", None):
            return {"quality": None, "exact": False, "subsampling": None}
        own = [np.asarray(img.quantization[k], dtype=int) for k in sorted(img.quantization)]
        sampling = SUBSAMPLING.get(JpegImagePlugin.get_sampling(img))
    best, distance = None, None
    for q, ref in reference_tables().items():
        d = sum(int(np.abs(a - np.asarray(b)).sum()) for a, b in zip(own, ref))
        if distance is None or d < distance:
            best, distance = q, d
    return {"quality": best, "exact": distance == 0, "subsampling": sampling}


def measure_jpeg(paths) -> dict:
    """The compression of a set of files: the median estimated quality, how many files have
    standard tables exactly, the most common chroma subsampling, and the quality's quartiles."""
    found = [estimate_quality(p) for p in paths]
    jpegs = [f for f in found if f["quality"] is not None]
    if not jpegs:
        raise ControlError(f"none of the {len(found)} raw photographs is a JPEG: the compression-matched "
                           f"control needs the real photographs' own compression to copy")
    q = np.array([f["quality"] for f in jpegs])
    sampling = Counter(f["subsampling"] for f in jpegs if f["subsampling"]).most_common(1)
    return {"files": len(found), "jpeg_files": len(jpegs), "quality_median": int(np.median(q)),
            "quality_q1": float(np.percentile(q, 25)), "quality_q3": float(np.percentile(q, 75)),
            "standard_tables": int(sum(f["exact"] for f in jpegs)),
            "subsampling": sampling[0][0] if sampling else "4:2:0"}


# -- the processing chains -----------------------------------------------------------------------

def jpeg_round_trip(img: Image.Image, quality: int, subsampling: str = "4:2:0") -> Image.Image:
    """``img`` compressed as JPEG at ``quality`` and decoded again, at its own size."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=int(quality), subsampling=subsampling)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("RGB")


def rescale(img: Image.Image, factor: float, side: int) -> tuple[Image.Image, float]:
    """The ``side`` x ``side`` image that a downscale of ``img`` by ``factor`` keeps at its centre
    (anti-aliased, as :func:`helpers.data.images.preprocess`), and the factor applied.

    The centred square of ``side / factor`` source pixels is resized to ``side``. When the image
    is too small for that (its shorter side is less than ``side / factor``), the whole centred
    square is used: the factor is then ``side / shorter side``, returned so that it is recorded.
    """
    w, h = img.size
    span = min(side / factor, min(w, h))
    left, top = (w - span) / 2, (h - span) / 2
    out = img.resize((side, side), Image.Resampling.LANCZOS, box=(left, top, left + span, top + span))
    return out, side / span


def real_factor(width: int, height: int, side: int) -> float:
    """How much the data step scales a photograph: its shorter side to ``side``."""
    return side / min(int(width), int(height))


def generated_factor(profile) -> float:
    """How much the data step scales a generated image: ``sd_resolution`` to ``image_size``."""
    return profile.image_size / profile.sd_resolution


def null_side(width: int, height: int, profile) -> int:
    """The side of both halves of the null classifier for one photograph: the study's side where
    the photograph is large enough to be scaled by the generated factor, else the side that
    factor gives (240 px for a 480-px photograph at 0.5)."""
    return int(min(profile.image_size, np.floor(generated_factor(profile) * min(int(width), int(height)))))

"""Chapter 1: offline stand-ins for the ``smoke`` profile, a tiny COCO-like tree of packaged photos.

The photographs shipped inside scikit-image and scikit-learn are cut into seeded crops of varied
size, saved as JPEG like COCO's files, with a captions file in COCO's own format. The real code
path (sampling, verification, preprocessing) then runs on them unchanged. They are stand-ins:
nothing measured on them is a finding about COCO.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.files import atomic_write_bytes, atomic_write_text
from .coco import CAPTION_FILES, caption_path

# Photographs that ship inside the packages (no download): loader, what they show.
PHOTOS = {
    "astronaut": ("skimage", "an astronaut in a spacesuit with a flag"),
    "coffee": ("skimage", "a cup of coffee on a saucer"),
    "chelsea": ("skimage", "a tabby cat looking to the side"),
    "rocket": ("skimage", "a rocket on its launch pad"),
    "china": ("sklearn", "a temple among trees in China"),
    "flower": ("sklearn", "a pink flower in close-up"),
}


def shipped_photos() -> dict[str, np.ndarray]:
    """The photographs as RGB arrays, with what they show, loaded from the installed packages."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    sk = load_sample_images()
    sk_named = {Path(f).stem: img for f, img in zip(sk.filenames, sk.images)}
    out = {}
    for name, (package, _) in PHOTOS.items():
        out[name] = getattr(skdata, name)() if package == "skimage" else sk_named[name]
    return out


def _crop(rng: np.random.Generator, photo: np.ndarray) -> np.ndarray:
    h, w = photo.shape[:2]
    side_h = int(rng.integers(min(160, h), min(320, h) + 1))
    side_w = int(min(w, side_h * rng.uniform(0.75, 1.5)))
    y = int(rng.integers(0, h - side_h + 1))
    x = int(rng.integers(0, w - side_w + 1))
    return photo[y:y + side_h, x:x + side_w, :3]


def build_standin_coco(root: Path, n_train: int, n_val: int, seed: int = 0) -> None:
    """Write ``n_train``/``n_val`` crops and COCO-format caption files under ``root`` (idempotent)."""
    root = Path(root)
    if all(caption_path(root, s).exists() for s in CAPTION_FILES):
        return
    rng = np.random.default_rng(seed)
    photos = shipped_photos()
    names = list(photos)
    next_id = 1
    for subset, n in (("train2017", n_train), ("val2017", n_val)):
        images, annotations = [], []
        for i in range(n):
            name = names[i % len(names)]
            arr = _crop(rng, photos[name])
            file_name = f"{next_id:012d}.jpg"
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format="JPEG", quality=90)
            atomic_write_bytes(root / subset / file_name, buf.getvalue())
            images.append(dict(id=next_id, file_name=file_name, width=arr.shape[1], height=arr.shape[0]))
            what = PHOTOS[name][1]
            for k, view in enumerate(("A photograph of", "A close view of", "Part of a picture of")):
                annotations.append(dict(id=next_id * 10 + k, image_id=next_id,
                                        caption=f"{view} {what} (stand-in crop {next_id})."))
            next_id += 1
        atomic_write_text(caption_path(root, subset),
                          json.dumps(dict(info={"description": "offline stand-in for COCO 2017 captions"},
                                          images=images, annotations=annotations)))

"""Chapter 1: reading any image file safely, and bringing both classes to one size and one format.

``load_rgb`` turns whatever a folder holds into an 8-bit RGB picture the right way up, or raises
:class:`BadImage` with the reason (zero-byte, truncated, not an image, too small, decompression
bomb). ``preprocess`` resizes with anti-aliasing to the profile's side and ``encode`` stores the
result in the profile's format, the same for real and generated images, so that a classifier
cannot tell the classes apart by their file format.
"""

from __future__ import annotations

import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..core.files import atomic_write_bytes

# A truncated file must fail, not be padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class BadImage(ValueError):
    """A file that cannot become a training image; ``str()`` is the reason, for the log."""


def _to_8bit_rgb(img: Image.Image) -> Image.Image:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or float grayscale: scale the full range to 8 bits (PIL's convert would clip).
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Transparent pixels go onto white, as a viewer would show them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode == "RGB":
        return img
    # L, 1, P, CMYK (PIL inverts Adobe CMYK JPEGs correctly), YCbCr, LAB, HSV, RGBX ...
    return img.convert("RGB")


def load_rgb(path: str | Path, *, min_side: int = 32, max_pixels: int = 64_000_000) -> Image.Image:
    """Decode ``path`` fully into an upright 8-bit RGB image, or raise :class:`BadImage`."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise BadImage(f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise BadImage("zero-byte file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise BadImage(f"decompression bomb: {w}x{h} is over the limit of {max_pixels} pixels")
                img.load()
                img = ImageOps.exif_transpose(img)
                rgb = _to_8bit_rgb(img)
                rgb.load()
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise BadImage("not an image file (no decoder recognises it)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise BadImage(f"truncated or corrupt: {exc}") from None
    if min(rgb.size) < min_side:
        raise BadImage(f"too small: {rgb.size[0]}x{rgb.size[1]}, the minimum side is {min_side}")
    return rgb


def preprocess(img: Image.Image, side: int) -> Image.Image:
    """Resize the shorter side to ``side`` with anti-aliasing, then centre-crop a square.

    Both classes go through this one function. A 768x768 generation shrinks by 2; a 640x480 COCO
    photo by 1.25 and loses its sides: the chapter discusses this difference of factors.
    """
    return img.resize((side, side), Image.Resampling.LANCZOS, box=crop_box(*img.size))


def crop_box(width: int, height: int) -> tuple[float, float, float, float]:
    """``(left, top, right, bottom)``, in the original's pixels, of the part of a ``width`` x
    ``height`` image that :func:`preprocess` keeps: the centred square of the shorter side (a
    640x480 photograph keeps x 80-560). Chapter 3 maps COCO's object outlines through the same box,
    so a hole lands on its object."""
    if width <= 0 or height <= 0:
        raise ValueError(f"an image of {width}x{height} has no pixels to crop")
    crop_w = crop_h = float(min(width, height))
    left, top = (width - crop_w) * 0.5, (height - crop_h) * 0.5
    return left, top, left + crop_w, top + crop_h


def encode(img: Image.Image, profile) -> bytes:
    """The bytes of ``img`` in the profile's storage format (the same for both classes)."""
    buf = io.BytesIO()
    if profile.store_format == "JPEG":
        img.save(buf, format="JPEG", quality=profile.jpeg_quality,
                 subsampling=profile.jpeg_subsampling, optimize=False)
    else:
        img.save(buf, format="PNG")
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    """The bytes of ``img`` as PNG: lossless, for a model's own output (before the common format)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def suffix(profile) -> str:
    return ".jpg" if profile.store_format == "JPEG" else ".png"


def convert_file(src: Path, dst: Path, profile) -> tuple[int, int]:
    """Load ``src`` safely, preprocess, and write ``dst`` atomically; the original (w, h)."""
    img = load_rgb(src, min_side=profile.min_side, max_pixels=profile.max_pixels)
    atomic_write_bytes(dst, encode(preprocess(img, profile.image_size), profile))
    return img.size


def is_valid_image(path: Path) -> bool:
    """True when ``path`` holds a whole, decodable image (used to skip finished work)."""
    try:
        load_rgb(path, min_side=1)
        return True
    except BadImage:
        return False


def find_damaged(paths, check=None, workers: int = 8) -> dict[Path, str]:
    """``{path: reason}`` of the files of ``paths`` that fail ``check`` (a reason or None; by default
    a full decode), checked in threads.

    The steps check what they made before they trust it: a file overwritten or cut short after
    it was written is made again instead of failing later, in the middle of a training epoch.
    """
    paths = list(paths)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths)))) as pool:
        return {p: reason for p, reason in zip(paths, pool.map(check or _decode_problem, paths)) if reason}


def _decode_problem(path: Path) -> str | None:
    try:
        load_rgb(path, min_side=1)
    except BadImage as exc:
        return str(exc)
    return None


def check_header(path: Path) -> str | None:
    """Why ``path`` cannot be an image, from its first bytes (cheap: no decode); None when it may be."""
    try:
        with Image.open(path) as img:
            img.size  # noqa: B018 - the header has been parsed
    except FileNotFoundError:
        return "the file is missing"
    except UnidentifiedImageError:
        return "not an image file (no decoder recognises it)"
    except (OSError, SyntaxError, ValueError) as exc:
        return f"unreadable: {exc}"
    return None

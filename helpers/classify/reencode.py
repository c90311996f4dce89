"""Chapters 4-5: the shortcut check's re-encodings, and a folder's images in the study's common format.

The shortcut check (``--reencode``): both classes re-encoded as JPEG at a lower quality, or shrunk
and enlarged back, before prediction. A classifier that learned the content of generated images
keeps most of its accuracy; one that learned a trace of the file format or of resampling loses it.

A folder's images (another generator's, a user's) are first brought to the study's common format
(the data step's resize and JPEG, in memory), as both training classes were: the classifier is
then judged on content, not on how a website stored the files.
"""

from __future__ import annotations

import io

from PIL import Image

from ..data.images import encode, preprocess
from .classifier import EvaluateError


def parse_reencode(spec) -> tuple[str, int] | None:
    """``"jpeg:75"`` -> ``("jpeg", 75)``, ``"resize:256"`` -> ``("resize", 256)``; None stays None."""
    if spec is None or spec == "" or spec == "none":
        return None
    kind, value = _split(spec)
    kind = str(kind).strip().lower()
    try:
        value = int(str(value).strip())
    except ValueError:
        raise EvaluateError(f"reencode {spec!r}: {value!r} is not a whole number") from None
    if kind == "jpeg" and not 1 <= value <= 100:
        raise EvaluateError(f"reencode {spec!r}: a JPEG quality is within 1..100")
    if kind == "resize" and value < 8:
        raise EvaluateError(f"reencode {spec!r}: the side must be at least 8 pixels")
    if kind not in ("jpeg", "resize"):
        raise EvaluateError(f"reencode {spec!r}: the kind is 'jpeg' or 'resize', not {kind!r}")
    return kind, value


def _split(spec) -> tuple:
    """``"kind:value"`` or a pair, as a pair (not yet checked)."""
    if isinstance(spec, str):
        kind, sep, value = spec.partition(":")
        if not sep:
            raise EvaluateError(f"--reencode takes jpeg:QUALITY or resize:SIDE, got {spec!r}")
        return kind, value
    try:
        kind, value = spec
    except (TypeError, ValueError):
        raise EvaluateError(f"reencode must be ('jpeg', quality) or ('resize', side), got {spec!r}") from None
    return kind, value


def reencode_image(img: Image.Image, spec) -> Image.Image:
    """``img`` through a lossy round trip, at its own size.

    ``("jpeg", q)``: saved as JPEG quality ``q`` (4:2:0) and decoded again, in memory.
    ``("resize", side)``: shrunk so that its shorter side is ``side`` (anti-aliased), then enlarged
    back to its own size: the fine detail above that scale is gone.
    """
    kind, value = parse_reencode(spec)
    if kind == "jpeg":
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=value, subsampling="4:2:0")
        buf.seek(0)
        with Image.open(buf) as out:
            return out.convert("RGB")
    w, h = img.size
    scale = value / min(w, h)
    small = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    return small.resize((w, h), Image.Resampling.BICUBIC)


def common_format(img: Image.Image, profile) -> Image.Image:
    """``img`` as the data step stores both classes (side, format, quality), in memory."""
    with Image.open(io.BytesIO(encode(preprocess(img, profile.image_size), profile))) as out:
        return out.convert("RGB")

"""Chapter 6: frozen CLIP image features for the linear probe, loaded through open_clip and cached per image.

UniversalFakeDetect (Ojha et al., CVPR 2023) found that a linear classifier on the frozen image
features of CLIP's ViT-L/14 (Radford et al., 2021) generalizes across generators far better than a
fine-tuned CNN. The features come from open_clip (Ilharco et al.) exactly as a user would load
them: ``open_clip.create_model_and_transforms(probe_model, pretrained=probe_pretrained)`` and the
model's own preprocessing (``openai``: fetched from the hub id ``timm/vit_large_patch14_clip_224.openai``).

``smoke`` never fetches 1.7 GB: its model is a tiny ViT of the same open_clip family (a config
registered with open_clip, :data:`TINY_CONFIG`) whose random weights are saved under
``<data>/models/tiny-clip-vit/`` and passed as ``pretrained=<file>``: the same code path, features
that mean nothing.

Each feature is the image embedding, scaled to unit length (as CLIP compares images and text), so
that one grid of regularization strengths suits every model. The features of a set of images are
kept in ``results/<profile>/probe/features/<set>.npz``, one row per image keyed by its path
(relative to the data root or to its folder), size and time, under a key of the model and its
weights' digest: a refit takes seconds, and only new or changed images are encoded again.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..core.distributed import default_device
from ..core.download import file_digest
from ..core.files import atomic_write, atomic_write_text
from ..core.paths import data_root, results_root, shown
from ..core.profiles import TINY_CLIP
from ..data.images import BadImage, load_rgb
from .classifier import EvaluateError

RANDOM = "random"  # probe_pretrained: the tiny model's seeded random weights (smoke)
# The tiny stand-in: ViT-L/14's family (a ViT image tower with QuickGELU, as OpenAI's weights use,
# and a text tower open_clip's CLIP class needs) at widths that run in seconds on a CPU.
TINY_CONFIG = {"embed_dim": 32, "quick_gelu": True,
               "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
               "text_cfg": {"context_length": 77, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1}}
WEIGHTS_NAME = "open_clip_model.safetensors"  # the file name open_clip asks the hub for first


class ProbeError(EvaluateError):
    """The probe cannot run; the message names the file or setting and what to do."""


def tiny_clip_dir() -> Path:
    return data_root() / "models" / TINY_CLIP


def register_tiny_clip() -> Path:
    """Write the tiny model's config where open_clip reads configs (once) and register it."""
    import open_clip

    config = tiny_clip_dir() / f"{TINY_CLIP}.json"
    if not config.exists() or json.loads(config.read_text(encoding="utf-8")) != TINY_CONFIG:
        atomic_write_text(config, json.dumps(TINY_CONFIG, indent=2))
    if TINY_CLIP not in open_clip.list_models():
        open_clip.add_model_config(config)
    return config


def ensure_tiny_clip(seed: int = 0) -> Path:
    """The tiny model's random weights (seeded, made once), as open_clip saves a CLIP state dict."""
    import open_clip
    import torch
    from safetensors.torch import save

    register_tiny_clip()
    weights = tiny_clip_dir() / WEIGHTS_NAME
    if not weights.exists():
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = open_clip.create_model(TINY_CLIP, pretrained=None)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        atomic_write(weights, lambda fh: fh.write(save(state)))
    return weights


def open_clip_args(profile) -> tuple[str, str, bool]:
    """``(model name, pretrained, quick_gelu)`` for open_clip: a tag's QuickGELU is forced as its
    weights were trained with it (open_clip's ViT-L-14 config alone would build plain GELU)."""
    from open_clip.pretrained import get_pretrained_cfg

    model, pretrained = profile.probe_model, profile.probe_pretrained
    if model == TINY_CLIP:
        register_tiny_clip()
        if pretrained == RANDOM:
            return model, str(ensure_tiny_clip()), False
    elif pretrained == RANDOM:
        raise ProbeError(f"probe_pretrained=random is the tiny stand-in's ({TINY_CLIP}); give {model!r} "
                         f"a tag of open_clip (e.g. openai) or a weights file")
    tag = get_pretrained_cfg(model, pretrained)
    if tag:
        return model, pretrained, bool(tag.get("quick_gelu", False))
    if Path(pretrained).expanduser().is_file():
        return model, str(Path(pretrained).expanduser().resolve()), False
    raise ProbeError(f"probe_pretrained={pretrained!r} is neither a tag open_clip knows for {model!r} nor a "
                     f"file: give e.g. --set probe_pretrained=openai, or the path of a weights file")


def hub_id(model: str, pretrained: str) -> str | None:
    """The hub repository open_clip fetches ``model``'s ``pretrained`` weights from, or None."""
    from open_clip.pretrained import get_pretrained_cfg

    hub = get_pretrained_cfg(model, pretrained).get("hf_hub", "") if pretrained != RANDOM else ""
    return posixpath.split(hub)[0] or None  # open_clip's reading: "org/name/" or "org/name/file"


def weights_file(profile) -> Path:
    """The local weights file the model is loaded from (a tag's is fetched into the hub cache once)."""
    from open_clip.pretrained import download_pretrained, get_pretrained_cfg

    model, pretrained, _ = open_clip_args(profile)
    tag = get_pretrained_cfg(model, pretrained)
    if not tag:
        return Path(pretrained)
    try:
        return Path(download_pretrained(tag))
    except Exception as exc:  # noqa: BLE001 -- the hub's many errors, one message
        raise ProbeError(f"the weights of {model} ({pretrained}) could not be fetched or found in the "
                         f"Hugging Face cache: {exc}") from None


def model_key(profile) -> str:
    """What the features depend on: the model, its weights (digest) and the preprocessing's source."""
    model, pretrained, quick_gelu = open_clip_args(profile)
    stamp = {"model": model, "pretrained": Path(pretrained).name if Path(pretrained).is_file() else pretrained,
             "quick_gelu": quick_gelu, "weights_sha256": file_digest(weights_file(profile), "sha256"),
             "normalize": True}
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]


def describe(profile) -> str:
    """One sentence, ready for the chapter, saying which model gave the features."""
    if profile.probe_model == TINY_CLIP:
        c = TINY_CONFIG["vision_cfg"]
        return (f"The features come from `{TINY_CLIP}`, a tiny vision transformer of open_clip's CLIP family "
                f"({c['layers']} layers of width {c['width']}, {c['patch_size']}-pixel patches on "
                f"{c['image_size']}-pixel inputs) with random weights, loaded through open_clip's own code: "
                f"the pipeline runs end to end, but its features, and every number computed from them, mean nothing.")
    return (f"The features come from open_clip's `{profile.probe_model}` with the `{profile.probe_pretrained}` "
            f"weights, frozen, through the model's own preprocessing: each image's embedding, scaled to unit length.")


class FeatureModel:
    """The frozen image encoder and its preprocessing, loaded on first use (a rerun that finds its
    features cached never loads it)."""

    def __init__(self, profile, device=None):
        self.profile, self.device, self._held = profile, default_device(device), None

    def _load(self):
        if self._held is None:
            import open_clip

            model, pretrained, quick_gelu = open_clip_args(self.profile)
            print(f"loading {model} ({shown(pretrained)}) through open_clip")
            net, _, preprocess = open_clip.create_model_and_transforms(
                model, pretrained=pretrained, force_quick_gelu=quick_gelu, device=self.device)
            self._held = (net.eval(), preprocess)
        return self._held

    def encode(self, images: list) -> np.ndarray:
        """Unit-length image embeddings (float32, one row per PIL image)."""
        import torch

        if not images:  # a batch of unreadable files: no model needed
            return np.zeros((0, 0), dtype=np.float32)
        net, preprocess = self._load()
        x = torch.stack([preprocess(img) for img in images]).to(self.device)
        with torch.inference_mode():
            return net.encode_image(x, normalize=True).float().cpu().numpy()


def file_keys(files: list[Path], root: Path) -> list[str]:
    """Each file's cache key: its path relative to ``root``, size and time (a rewritten image is new)."""
    keys = []
    for f in files:
        st = f.stat() if f.exists() else None
        rel = f.relative_to(root).as_posix() if f.is_relative_to(root) else f.name
        keys.append(f"{rel}\t{st.st_size if st else -1}\t{st.st_mtime_ns if st else -1}")
    return keys


def features_path(profile, set_name: str) -> Path:
    return results_root(profile.name) / "probe" / "features" / f"{set_name}.npz"


def _read_cache(path: Path, key: str, source: str) -> dict[str, np.ndarray]:
    """``{file key: feature}`` of a cache written for this model and source, else empty."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["model_key"]) != key or str(z["source"]) != source:
                return {}
            return dict(zip(z["keys"].tolist(), z["features"]))
    except (OSError, KeyError, ValueError):
        return {}


def _write_cache(path: Path, key: str, source: str, rows: dict[str, np.ndarray]) -> None:
    keys = sorted(rows)
    features = np.stack([rows[k] for k in keys]).astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, model_key=np.array(key), source=np.array(source), keys=np.array(keys), features=features)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def cached_features(profile, set_name: str, files: list[Path], source: Path, model: FeatureModel, *,
                    key: str, reformat: Callable | None = None, skipped: dict | None = None,
                    min_side: int = 1, batch_size: int = 16) -> tuple[np.ndarray, int]:
    """``(features, how many were encoded now)`` of ``files`` in order; a row of NaN for a file that
    cannot be read (its reason in ``skipped``). Cached rows are reused, new ones added to the cache."""
    path, where = features_path(profile, set_name), shown(str(source))
    rows = _read_cache(path, key, where)
    keys = file_keys(files, source)
    todo = [i for i, k in enumerate(keys) if k not in rows]
    for start in range(0, len(todo), batch_size):
        batch = todo[start:start + batch_size]
        done = _encode_batch(model, [files[i] for i in batch], reformat, skipped, min_side, profile.max_pixels)
        rows.update({keys[i]: f for i, f in zip(batch, done) if f is not None})
    if todo and rows:
        _write_cache(path, key, where, rows)
    dim = len(next(iter(rows.values()))) if rows else 0
    out = np.array([rows[k] if k in rows else np.full(dim, np.nan, np.float32) for k in keys], np.float32)
    return out.reshape(len(files), dim), len(todo)


def _encode_batch(model: FeatureModel, files: list[Path], reformat, skipped, min_side: int, max_pixels: int):
    """Each file's feature, or None for one that cannot be read (decoded in threads)."""
    def read(f):
        try:
            img = load_rgb(f, min_side=min_side, max_pixels=max_pixels)
            return reformat(img) if reformat is not None else img
        except BadImage as exc:
            if skipped is not None:
                skipped[f] = str(exc)
            return None

    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
        images = list(pool.map(read, files))
    good = [img for img in images if img is not None]
    encoded = iter(model.encode(good))
    return [next(encoded) if img is not None else None for img in images]

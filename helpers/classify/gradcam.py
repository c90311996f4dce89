"""Chapter 6: where Chapter 4's classifier looks: Grad-CAM maps as distributions over pixels, their share on objects.

A detector that calls DALL-E 2 images real and Imagen images generated (section 6 of the paper)
says nothing about *what* it uses. Grad-CAM (Selvaraju et al., 2017) shows which places of an
image raise one output: the activations of a layer weighted by the mean gradient of that output
per channel, summed over channels, negatives cut off. We compute it with the ``grad-cam`` package
(``pytorch_grad_cam.GradCAM``, ``ClassifierOutputTarget``):

- the output is the "generated" one: ``out[:, 1]`` of the paper's two-output head (its sigmoid is
  P(generated), :func:`helpers.classify.prediction.probabilities`), the one logit of the ``logit`` head;
- the layer is the last stage of the timm ConvNeXt (``model.stages[-1]``): the last map that still
  has places (12 x 12 at 384 px input), after every block has seen the image;
- the map is kept as the package computes it *before* its per-image min-max scaling, which would
  shift every pixel's share; :func:`distribution` brings it to the stored image's side (bilinear)
  and divides by its sum, so that a map is a distribution over pixels (sum 1) and its mass on a
  region is a share. A map that is zero everywhere (no place raises "generated") has no
  distribution: it is reported as empty, never replaced by a uniform one.

The object check (:func:`object_region`, :func:`object_share`): a real test photograph's COCO
objects, rasterised through the same crop and resize as the photograph by Chapter 3's
:func:`helpers.inpaint.masks.polygons_mask` (crowd regions, stored as run lengths, by
:func:`rle_mask`); a uniform map would put exactly the objects' share of
the area on them, the baseline a map's mass on the objects is compared with. The step that runs
both over the study's images is :mod:`helpers.classify.gradcam_step` (``python -m helpers gradcam``).
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from ..data.images import crop_box
from ..inpaint.masks import polygons_mask
from .models import HEADS
from .prediction import probabilities

# Why an image has no object region for the check (a photograph the check leaves out, counted).
NOT_ANNOTATED = "not in the instances file"
CROWD = "a region in compressed RLE (COCO's instance files store crowds uncompressed, which is read)"
NO_OBJECT = "no annotated object"
CUT_AWAY = "its objects lie outside the centre crop"


class GradCamError(RuntimeError):
    """Grad-CAM cannot run on this model or these images; the message says what to do."""


def target_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The last stage of a timm ConvNeXt (``model.stages[-1]``), the layer the maps are read at."""
    stages = getattr(model, "stages", None)
    if not isinstance(stages, torch.nn.Sequential) or len(stages) == 0:
        raise GradCamError(f"Grad-CAM reads the last stage of a timm ConvNeXt (model.stages[-1]); "
                           f"{type(model).__name__} has no stages: Chapter 6 maps Chapter 4's ConvNeXt, "
                           f"give its checkpoint (train_model a ConvNeXt or tiny-convnext)")
    return stages[-1]


def target_output(head: str) -> int:
    """The index of the output whose sigmoid is P(generated): 1 for ``paper``, 0 for ``logit``."""
    if head not in HEADS:
        raise GradCamError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")
    return 1 if head == "paper" else 0


@cache
def _raw_cam():
    """``pytorch_grad_cam.GradCAM`` whose result is the map at the layer's resolution, negatives
    cut off, *before* the package's per-image min-max scaling and resize (a class made once, on
    first use, so that importing this module does not load the package and OpenCV)."""
    from pytorch_grad_cam import GradCAM

    class RawGradCAM(GradCAM):
        def compute_cam_per_layer(self, input_tensor, targets, eigen_smooth):
            acts = self.activations_and_grads.activations[0].numpy()
            grads = self.activations_and_grads.gradients[0].numpy()
            cam = self.get_cam_image(input_tensor, self.target_layers[0], targets, acts, grads, eigen_smooth)
            return np.maximum(cam, 0)

        def aggregate_multi_layers(self, cam_per_target_layer):
            return cam_per_target_layer
    return RawGradCAM


def grad_cams(model: torch.nn.Module, inputs: torch.Tensor, head: str) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of the "generated" output for a batch of model inputs ``(N, 3, S, S)``.

    Returns the maps at the target layer's resolution ``(N, h, w)`` (float32, >= 0, unscaled) and
    P(generated) of the same forward pass ``(N,)``. Runs in float32 with gradients on for the input
    only (:func:`_frozen`), so the maps exist whatever the weights' settings.
    """
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model.eval()
    layer = target_layer(model)
    device = next(model.parameters()).device
    x = inputs.detach().to(device, torch.float32).requires_grad_(True)
    cam = _raw_cam()(model, [layer])
    with _frozen(model):
        try:
            with torch.enable_grad():
                maps = cam(x, [ClassifierOutputTarget(target_output(head))] * len(x))
                p = probabilities(cam.outputs.detach(), head)
        finally:
            cam.activations_and_grads.release()
    return np.asarray(maps, dtype=np.float32), p.float().cpu().numpy()


@contextmanager
def _frozen(model: torch.nn.Module):
    """The weights need no gradient for a map (the input asks for one instead): ConvNeXt-XL's 350 M
    weight gradients are neither computed nor stored; each weight's own setting comes back after."""
    flags = [(param, param.requires_grad) for param in model.parameters()]
    for param, _ in flags:
        param.requires_grad_(False)
    try:
        yield model
    finally:
        for param, flag in flags:
            param.requires_grad_(flag)


def distribution(raw: np.ndarray, side: int) -> np.ndarray | None:
    """A map ``(h, w)`` as a distribution over the ``side`` x ``side`` pixels of the stored image
    (bilinear upsampling, half-pixel centres; sum 1), or None when the map is zero everywhere."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim != 2 or not np.isfinite(raw).all() or (raw < 0).any():
        raise GradCamError(f"a Grad-CAM map is a 2-D array of finite values >= 0; got shape {raw.shape}")
    if raw.sum() <= 0:
        return None
    up = F.interpolate(torch.from_numpy(raw)[None, None], size=(side, side), mode="bilinear",
                       align_corners=False)[0, 0].numpy()
    up = np.clip(up, 0, None)
    return up / up.sum()


def object_share(dist: np.ndarray, mask: np.ndarray) -> float:
    """The mass of distribution ``dist`` on the pixels of ``mask`` (a uniform map gives ``mask.mean()``)."""
    if dist.shape != mask.shape:
        raise GradCamError(f"a map of {dist.shape} and an object mask of {mask.shape} do not match")
    return float(dist[np.asarray(mask, dtype=bool)].sum())


def annotation_index(instances: dict) -> tuple[dict, dict]:
    """``({image_id: image entry}, {image_id: [annotations]})``: one pass over COCO's lists, so
    that 1,500 photographs do not each scan 36,000 annotations."""
    images = {im["id"]: im for im in instances.get("images", [])}
    by_image: dict = {}
    for ann in instances.get("annotations", []):
        by_image.setdefault(ann["image_id"], []).append(ann)
    return images, by_image


def rle_mask(rle: dict, width: int, height: int, side: int) -> np.ndarray | None:
    """A crowd region in COCO's uncompressed RLE (``counts``: run lengths, background first, the
    image read column by column) in the preprocessed ``side`` x ``side`` square: each pixel takes
    the original's pixel under its centre, through the same crop as the photograph; None for
    compressed RLE (a string), which needs pycocotools."""
    counts = rle.get("counts")
    if not isinstance(counts, list):
        return None
    h, w = rle.get("size", (height, width))
    flat = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    full = np.zeros(h * w, dtype=bool)
    full[:min(len(flat), h * w)] = flat[:h * w]
    full = full.reshape(w, h).T
    left, top, right, _ = crop_box(w, h)
    centres = (np.arange(side) + 0.5) * (right - left) / side
    cols = np.clip(np.floor(left + centres).astype(int), 0, w - 1)
    rows = np.clip(np.floor(top + centres).astype(int), 0, h - 1)
    return full[np.ix_(rows, cols)]


def object_region(index: tuple[dict, dict], image_id: int, side: int) -> tuple[np.ndarray | None, str]:
    """The union of photograph ``image_id``'s annotated objects in its preprocessed ``side`` x
    ``side`` square, or None and why it is left out.

    Polygons go through Chapter 3's crop-correct rasterisation; crowd regions (a crowd of people is
    an object too, not background) through :func:`rle_mask`. A photograph with a region that
    cannot be read is left out rather than counted with that region as background.
    """
    images, by_image = index
    image = images.get(int(image_id))
    if image is None:
        return None, NOT_ANNOTATED
    anns = by_image.get(int(image_id), [])
    if not anns:
        return None, NO_OBJECT
    width, height = image["width"], image["height"]
    mask = polygons_mask([poly for a in anns if isinstance(a["segmentation"], list) for poly in a["segmentation"]],
                         width, height, side)
    for ann in (a for a in anns if not isinstance(a["segmentation"], list)):
        crowd = rle_mask(ann["segmentation"], width, height, side)
        if crowd is None:
            return None, CROWD
        mask |= crowd
    return (mask, "") if mask.any() else (None, CUT_AWAY)

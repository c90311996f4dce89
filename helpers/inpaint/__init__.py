"""Chapter 3: inpainting real and generated images with the same holes, and scoring the results.

Re-exported here: the names of the modules that import no torch at their top (the inpainter
interface, the holes, the scores inside a hole, the comparison of two groups of scores), so that
``import helpers.inpaint`` and a figure of holes stay light. The modules that import torch at
their top are imported by their own path, where they are needed:

- :mod:`.step` (the ``inpaint`` step: ``build``, ``run``, ``InpaintError``, the set names);
- the inpainters :mod:`.pconv`, :mod:`.deepfill` (with :mod:`.deepfill_layers`) and :mod:`.sd`,
  and :mod:`.weights` (their published checkpoints);
- the scores :mod:`.niqe`, :mod:`.fid` (FID, KID and SIFID), :mod:`.inception` (their network),
  :mod:`.lpips` (LPIPS of whole images and inside the hole) and :mod:`.scoring` (the step's scores).
"""

from .hole_scores import (
    HOLE_BOX_MIN,
    hole_box,
    hole_crops,
    psnr_hole,
    read_hole,
    scores_in_hole,
    ssim_hole,
)
from .interface import Classical, Inpainter, check_inputs, composite
from .masks import (
    DILATE_PX,
    OBJECT_MAX_RATIO,
    OBJECT_MIN_RATIO,
    MaskError,
    coco_object,
    crop_box,
    dilate_hole,
    free_form,
    from_folder,
    hole_ratio,
    load_instances,
    matched_holes,
    moved_hole,
)
from .quality import (
    MissingWeights,
    QualityError,
    batches_by_size,
    bootstrap_difference,
    missing_weights,
    to_tensor,
)

__all__ = ["HOLE_BOX_MIN", "hole_box", "hole_crops", "psnr_hole", "read_hole", "scores_in_hole", "ssim_hole",
           "Classical", "Inpainter", "check_inputs", "composite", "DILATE_PX", "OBJECT_MAX_RATIO",
           "OBJECT_MIN_RATIO", "MaskError", "coco_object", "crop_box", "dilate_hole", "matched_holes",
           "moved_hole", "free_form", "from_folder", "hole_ratio", "load_instances", "MissingWeights",
           "missing_weights", "QualityError", "batches_by_size", "bootstrap_difference", "to_tensor"]

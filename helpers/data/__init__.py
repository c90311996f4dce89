"""Chapter 1: the two classes of the study -- COCO photographs and Stable Diffusion generations.

Re-exported here: the names of the modules that import neither torch nor diffusers, so that
``import helpers.data`` stays light (the data step, the manifest, the image checks). The two modules
that import torch at their top are imported by their own path, where they are needed:
:mod:`.generate` (the ``generate`` step) and :mod:`.tiny_sd` (smoke's tiny pipeline). The steps'
``run`` is reached as ``real_data.run``; the manifest's ``load`` as ``manifest.load``.
Chapter 4's image side lives here too: the controls' processing chains and COCO's JPEG quality
(:mod:`.controls`), and the residual spectra (:mod:`.spectra`).
"""

from . import coco, controls, images, manifest, real_data, spectra, standins
from .controls import CONTROLS, ControlError, estimate_quality, jpeg_round_trip, measure_jpeg, rescale
from .coco import (ANNOTATIONS_ZIP, CAPTION_FILES, OFFICIAL_URL, SUBSET_OF_SPLIT, base_url, caption_path,
                   extract_captions, image_seed, image_url, load_captions, make_plan, normalise,
                   plan_with_reserve)
from .images import (BadImage, check_header, convert_file, encode, find_damaged, is_valid_image, load_rgb,
                     png_bytes, preprocess, suffix)
from .manifest import AUGMENTED_SOURCES, LABELS, SPLITS, ManifestError, write_csv, write_part
from .real_data import DataError, convert_all, format_settings, log_skipped, plan_paths, processed_path
from .standins import build_standin_coco

__all__ = ["coco", "controls", "images", "manifest", "real_data", "spectra", "standins",
           "CONTROLS", "ControlError", "estimate_quality", "jpeg_round_trip", "measure_jpeg", "rescale",
           "ANNOTATIONS_ZIP", "CAPTION_FILES", "OFFICIAL_URL", "SUBSET_OF_SPLIT", "base_url", "caption_path",
           "extract_captions", "image_seed", "image_url", "load_captions", "make_plan", "normalise",
           "plan_with_reserve", "BadImage", "check_header", "convert_file", "encode", "find_damaged",
           "is_valid_image", "load_rgb", "png_bytes", "preprocess", "suffix", "AUGMENTED_SOURCES",
           "LABELS", "SPLITS", "ManifestError", "write_csv", "write_part", "DataError", "convert_all",
           "format_settings", "log_skipped", "plan_paths", "processed_path", "build_standin_coco"]

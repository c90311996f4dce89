"""Chapter 2: the paper's Algorithm 1 (:mod:`.algorithm1`) and the ``augment`` step (:mod:`.step`).

Neither module imports torch at its top (only :func:`apply` needs it, and loads it), so importing
the package is light. The step's ``run`` is reached as ``step.run``.
"""

from . import algorithm1, step
from .algorithm1 import SUBSETS, TECHNIQUES, AugmentError, apply, aug_seed, crop_scale, draw, plan
from .step import PARTS, SOURCE, drawn_parameters, training_set

__all__ = ["algorithm1", "step", "SUBSETS", "TECHNIQUES", "AugmentError", "apply", "aug_seed",
           "crop_scale", "draw", "plan", "PARTS", "SOURCE", "drawn_parameters", "training_set"]

"""Chapter 2: the ranges of the augmentation (the paper's Algorithm 1 names its techniques, not these).

Part of every profile (``Profile.augment``); each range carries the reason for its value, which
Chapter 2 shows in its table of ranges. ``_why`` attaches such a reason to any setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _why(default, reason: str):
    return field(default=default, metadata={"why": reason})


@dataclass(frozen=True)
class AugmentRanges:
    """Ranges of Chapter 2's augmentation (the paper's Algorithm 1 names the techniques, not these).

    Each augmented image applies a non-empty random subset of the four techniques, with every
    parameter drawn uniformly from its range. The ranges are mild on purpose: the paper wants more
    training images *of the same kind* (section 4), not new kinds of image. Each field says why.
    """

    rotation_deg: float = _why(
        15.0, "degrees either way; keeps horizons and people plausibly upright. The empty corners a "
        "rotation leaves are cut away (largest centred crop, resized back): black corners in one "
        "class only would be a give-away")
    noise_sigma: tuple[float, float] = _why(
        (0.01, 0.04), "standard deviation on the [0, 1] scale; visible on flat areas, below the noise "
        "of a dim indoor photograph; more would teach 'noisy means generated'")
    brightness: tuple[float, float] = _why(
        (0.8, 1.2), "factor (1 = unchanged); +-20% stays within how exposure varies across COCO")
    contrast: tuple[float, float] = _why(
        (0.8, 1.2), "factor (1 = unchanged); the same reasoning as brightness")
    saturation: tuple[float, float] = _why(
        (0.8, 1.2), "colour jitter, factor (1 = unchanged): from slightly muted to slightly vivid")
    hue: tuple[float, float] = _why(
        (-0.05, 0.05), "colour jitter, shift as a fraction of the colour circle; 0.05 is 18 degrees: "
        "tints change, skin and sky keep possible colours")

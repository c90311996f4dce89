"""Chapter 3: Stable Diffusion 2 inpainting through diffusers, as the modern comparison.

``stabilityai/stable-diffusion-2-inpainting`` (or smoke's tiny random pipeline of the same
family, with a 9-channel UNet). The diffusers pipeline takes a white-is-hole mask; it works at a
multiple of 8 and returns a whole new image, so the wrapper pastes the original back outside the
hole, like every other inpainter.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..core.paths import data_root
from ..core.profiles import TINY_SD2_INPAINT
from ..data.generate import from_pretrained, run_dtype
from ..data.tiny_sd import build_tiny_pipeline
from .interface import check_inputs, composite


def model_location(profile) -> str:
    """What ``from_pretrained`` gets: the hub id, a local folder, or smoke's tiny pipeline's folder."""
    if profile.sd_inpaint_model == TINY_SD2_INPAINT:
        return str(build_tiny_pipeline(data_root() / "models" / TINY_SD2_INPAINT, inpainting=True))
    return profile.sd_inpaint_model


class SDInpainter:
    name = "sd2_inpaint"

    def __init__(self, profile, device: torch.device | str = "cpu"):
        import diffusers  # lazily: seconds to import, and only this inpainter needs it

        self.profile, self.device = profile, torch.device(device)
        self.pipe = from_pretrained(diffusers.StableDiffusionInpaintPipeline, model_location(profile),
                                    run_dtype(profile, self.device), "sd_inpaint_model")
        self.pipe.set_progress_bar_config(disable=True)
        self.pipe.to(self.device)
        self.side = 64 if profile.sd_inpaint_model == TINY_SD2_INPAINT else 512

    def __call__(self, image: Image.Image, hole: np.ndarray, seed: int = 0) -> Image.Image:
        check_inputs(image, hole)
        mask = Image.fromarray((hole * 255).astype(np.uint8))
        side = self.side
        with torch.inference_mode():
            out = self.pipe(prompt=self.profile.sd_inpaint_prompt, image=image.resize((side, side)),
                            mask_image=mask.resize((side, side), Image.Resampling.NEAREST),
                            height=side, width=side, num_inference_steps=self.profile.sd_steps,
                            guidance_scale=self.profile.sd_guidance,
                            generator=torch.Generator("cpu").manual_seed(seed)).images[0]
        return composite(image, out, hole)

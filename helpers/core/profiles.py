"""Every chapter: the three run profiles of the book, the one source of truth for every setting.

A profile is chosen by name (``smoke``, ``course``, ``paper``): from the argument, else from the
environment variable ``BOOK_PROFILE``, else ``smoke``. Any field can be overridden, in a notebook's
``parameters`` cell (``overrides = {"real_train": 100}``) or on a command line
(``--set real_train=100``); an unknown name or a bad value is refused with the valid choices.

``BOOK_SET="real_train=40 gen_train=30"`` (the ``--set`` syntax, several pairs separated by spaces)
overrides settings for a whole build: every command and every notebook reads it, so a rehearsal or
a quick trial of a real profile changes its counts in one place. A notebook's or a command's own
overrides come after it and win. :meth:`Profile.describe` names every setting that differs from the
profile as published, so an output never hides that it ran with changed settings.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, fields

# The `--set KEY=VALUE` syntax lives in settings.py; its names are part of this module's surface.
from .augment_ranges import AugmentRanges, _why
from .settings import SET_ENV, ProfileError, build_sets, parse_sets, to_sets  # noqa: F401

ENV_VAR = "BOOK_PROFILE"
DEFAULT = "smoke"

# Hub ids of the real assets (the paper's generator and the faster one of the same family).
SD2_768 = "stabilityai/stable-diffusion-2"
SD2_BASE_512 = "stabilityai/stable-diffusion-2-base"
# Stand-in for smoke: a tiny random pipeline of SD 2.0's architecture, built locally under the data
# root and loaded through the same ``from_pretrained`` call as a hub id.
TINY_SD2 = "tiny-sd2"
TINY_SD2_INPAINT = "tiny-sd2-inpainting"
# Smoke's stand-ins for the DALL-E 2 and Imagen folders: images of differently configured tiny
# generators, made locally (Chapter 3). Real folders are given with --set dalle2_dir=/path.
STANDIN_DIR = "standin"
TINY_CLIP = "tiny-clip-vit"  # smoke's CLIP for Chapter 6's probe: tiny, random, open_clip's own loading


# Chapter 4's training-time controls by name (``controls``, ``train --variant``; helpers.data.controls).
CONTROLS = ("compression-matched", "scale-matched", "null")
# Chapter 3's inpainting methods by name (``inpaint_models``, ``python -m helpers inpaint --model``).
INPAINT_MODELS = ("pconv", "deepfill_v2", "sd2_inpaint", "telea", "navier_stokes", "biharmonic")


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # -- real images, sampled from MS-COCO 2017 (or the offline stand-in for smoke)
    real_source: str  # "coco": download from cocodataset.org; "standin": shipped photographs
    real_train: int  # sampled from train2017
    real_val: int  # sampled from train2017
    real_test: int  # sampled from val2017
    # -- generated images, from captions of COCO images outside the real sets
    gen_train: int  # grown to real_train by Chapter 2's augmentation
    gen_val: int
    gen_test: int
    sd_model: str  # diffusers hub id, a local directory, or TINY_SD2
    sd_resolution: int  # generated images are sd_resolution x sd_resolution
    sd_steps: int
    sd_guidance: float
    sd_scheduler: str  # a diffusers scheduler class, built from the model's scheduler config
    sd_batch: int  # images per forward pass on one device
    sd_dtype: str  # on a GPU: "float16" or "bfloat16"; a CPU always runs float32
    # -- preprocessing: both classes end up in exactly the same format
    image_size: int = 384  # ConvNeXt-XL's input side in the paper
    store_format: str = "JPEG"
    jpeg_quality: int = 95
    jpeg_subsampling: str = "4:2:0"
    min_side: int = 32  # smaller images are skipped, with the reason logged
    max_pixels: int = 64_000_000  # larger images are refused as decompression bombs
    # -- Chapter 2: augmented generated training images (Algorithm 1: 7,000 + 3,000 = 10,000)
    augment_count: int = 0
    augment: AugmentRanges = AugmentRanges()
    # -- Chapter 3: inpainting real and generated images
    inpaint_count: int = 10  # images per set; the paper's Table 2 uses 10 (the first 10 are reported apart)
    inpaint_models: str = "pconv,deepfill_v2,sd2_inpaint,telea,navier_stokes,biharmonic"  # Chapter 3 runs these
    mask_ratio: float = 0.15  # share of each image covered by the free-form hole (same masks for every set)
    # Chapter 3's holes (`inpaint --masks`): "objects" removes a COCO object, as the paper's Fig. 6 (generated
    # images get each photograph's hole moved: same area and shape); "free_form": seeded strokes of mask_ratio
    inpaint_masks: str = "objects"
    pconv_checkpoint: str = ""  # path or URL of a partial-convolution U-Net checkpoint (state under "model")
    deepfill_checkpoint: str = ""  # path or URL of the DeepFill v2 PyTorch conversion (state under "G")
    sd_inpaint_model: str = "stabilityai/stable-diffusion-2-inpainting"
    sd_inpaint_prompt: str = "background, the scene continued naturally"
    dalle2_dir: str = ""  # a folder of DALL-E 2 images (Chapter 3 lists public sources)
    imagen_dir: str = ""  # a folder of Imagen images
    # -- Chapter 4: fine-tuning the classifier (sections 4, 5, 5.3)
    train_model: str = "convnext_xlarge.fb_in22k_ft_in1k_384"  # a timm name, or "tiny-convnext" (smoke)
    train_pretrained: str = "timm"  # "timm": the hub weights through timm; "none": random; or a local file
    train_img_size: int = 384
    train_head: str = "paper"  # "paper": 2 outputs, sigmoid, BCE (as the paper); "logit": 1 logit, BCE
    train_batch: int = 4  # global batch (all GPUs, after accumulation), the paper's 4
    train_micro_batch: int = 4  # per GPU per step; accumulation makes up the rest
    train_epochs: int = 200
    train_patience: int = 10  # early stopping on validation loss
    train_lr: float = 1e-4  # Adam; the paper gives no value
    train_weight_decay: float = 0.0
    train_precision: str = "bf16"  # on a GPU: "bf16", "fp16" or "fp32"; a CPU runs fp32
    train_channels_last: int = 1
    train_compile: int = 0
    train_grad_checkpointing: int = 0  # activation checkpointing (ConvNeXt-XL on 11 GB cards)
    train_workers: int = 8
    train_checkpoint_minutes: float = 10.0  # also save last.pt in mid-epoch this often (and on SIGTERM); 0: epoch ends only
    # a finished run's last.pt keeps the optimizer's state (twice the weights: 2.8 GB for ConvNeXt-XL),
    # so that a longer run (train_epochs, train_patience raised) goes on from it; 0 drops it
    train_keep_finished_optimizer: int = 1
    # Chapter 4's training-time controls (``python -m helpers controls``, ``train --variant NAME``), each
    # one more training run of Chapter 4's model: its shortcut tested by training without it, not only by
    # perturbing test images (CONTROLS lists the valid names; "" trains none, the chapter says so)
    controls: str = _why("compression-matched,scale-matched,null",
                         "all three: each removes one difference of processing between the classes")
    spectra_count: int = _why(
        500, "images per class and set for Chapter 4's residual spectra: the mean log spectrum's noise "
        "falls as 1/sqrt(N), and 500 images of 384 px take about a minute on one core")
    # -- Chapter 5: the ablation (Table 3) and the transfer to other generators (section 6)
    # the three other backbones of Table 3 (``--model KEY`` of train and evaluate): KEY=timm name
    ablation_models: str = "vgg16=vgg16.tv_in1k,resnet50=resnet50.tv_in1k,efficientnet_b0=efficientnet_b0.ra_in1k"
    # all four at train_img_size (one input size, one transform); the paper does not say which size
    # it gave the three smaller ones, so a second, smaller size is run as a variant (0: none)
    ablation_variant_size: int = 224
    # learning rates tried per backbone; the one of lowest validation loss is kept (ties: the smaller)
    ablation_lr_grid: str = "3e-5,1e-4,3e-4"
    ablation_seeds: int = 3  # seeds seed, seed+1, ... of the chosen learning rate: mean +- sd in Table 3
    transfer_count: int = 0  # images per stand-in generator (smoke); a real folder is used whole
    # -- Chapter 6: the CLIP linear probe (UniversalFakeDetect's recipe; helpers.classify.probe)
    probe_model: str = _why("ViT-L-14", "open_clip's name of the image encoder Ojha et al. (CVPR 2023) probe")
    probe_pretrained: str = _why("openai", "an open_clip tag (openai: CLIP's own weights), a file, or random (smoke)")
    probe_c_grid: str = _why("1e-4:1e4:17", "LOW:HIGH:N: N log-spaced C (half decades) tried on validation, as CLIP's probes")
    gradcam_count: int = _why(4, "Chapter 6: images per group of the Grad-CAM figure (python -m helpers gradcam): "
                              "a row of the grid a reader can look at image by image")
    # -- jobs
    build_runs_steps: int = 1  # 1: a chapter runs its steps as it is built; 0: `make run` first (paper)
    seed: int = 2024
    download_workers: int = 16
    download_retries: int = 3
    coco_url: str = ""  # a COCO-style server's base URL; "": $BOOK_COCO_URL, else COCO's own server

    @property
    def real_counts(self) -> dict[str, int]:
        return {"train": self.real_train, "val": self.real_val, "test": self.real_test}

    @property
    def inpaint_model_list(self) -> list[str]:
        return [m for m in self.inpaint_models.split(",") if m]

    @property
    def gen_counts(self) -> dict[str, int]:
        return {"train": self.gen_train, "val": self.gen_val, "test": self.gen_test}

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def changed_settings(self) -> dict:
        """Settings that differ from the profile as published (from BOOK_SET or overrides)."""
        base = PROFILES.get(self.name)
        if base is None:
            return {}
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != getattr(base, f.name)}

    def describe(self) -> str:
        r, g = self.real_counts, self.gen_counts
        changed = self.changed_settings()
        note = ("\n  changed from the published profile: "
                + " ".join(f"{k}={v}" for k, v in changed.items())) if changed else ""
        return (
            f"profile '{self.name}':\n  {self.description}\n"
            f"  real      train/val/test = {r['train']}/{r['val']}/{r['test']} ({self.real_source})\n"
            f"  generated train/val/test = {g['train']}/{g['val']}/{g['test']}\n"
            f"    by {self.sd_model} at {self.sd_resolution}px, {self.sd_steps} steps,\n"
            f"    guidance {self.sd_guidance}, {self.sd_scheduler}\n"
            f"  both stored as {self.store_format} q{self.jpeg_quality} {self.jpeg_subsampling} "
            f"at {self.image_size}x{self.image_size}{note}"
        )


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="any CPU, offline, minutes: stand-in photographs and a tiny random\n  "
        "pipeline of SD 2.0's architecture (pipeline checks, not findings)",
        real_source="standin",
        real_train=24,
        real_val=8,
        real_test=8,
        gen_train=16,
        gen_val=8,
        gen_test=8,
        sd_model=TINY_SD2,
        sd_resolution=128,
        sd_steps=4,
        sd_guidance=7.5,
        sd_scheduler="EulerDiscreteScheduler",
        sd_batch=4,
        sd_dtype="float32",
        augment_count=8,
        inpaint_count=4,
        inpaint_models="pconv,deepfill_v2,sd2_inpaint,telea",
        inpaint_masks="free_form",  # the stand-in photographs have captions but no object annotations
        train_model="tiny-convnext",
        train_pretrained="none",
        train_img_size=64,
        train_batch=8,
        train_micro_batch=4,
        train_epochs=3,
        train_patience=2,
        train_lr=1e-3,
        train_workers=0,
        sd_inpaint_model=TINY_SD2_INPAINT,
        pconv_checkpoint="random",  # smoke never fetches: the real networks with random weights
        deepfill_checkpoint="random",
        dalle2_dir=STANDIN_DIR,
        imagen_dir=STANDIN_DIR,
        ablation_models="vgg16=tiny-vgg,resnet50=tiny-resnet,efficientnet_b0=tiny-efficientnet",
        ablation_variant_size=48,
        ablation_lr_grid="3e-4,1e-3",
        ablation_seeds=1,
        transfer_count=12,
        probe_model=TINY_CLIP,
        probe_pretrained="random",
        download_workers=4,
        spectra_count=8,  # smoke's test split holds 8 images per class
    ),
    "course": Profile(
        name="course",
        description="one Colab-class GPU (time to run: see the page Running the book):\n  "
        "1/20 of the paper's counts, SD 2.0-base at 512 px",
        real_source="coco",
        real_train=500,
        real_val=95,
        real_test=75,
        gen_train=350,
        gen_val=95,
        gen_test=75,
        sd_model=SD2_BASE_512,
        sd_resolution=512,
        sd_steps=25,
        sd_guidance=7.5,
        sd_scheduler="EulerDiscreteScheduler",
        sd_batch=4,
        sd_dtype="float16",
        augment_count=150,
        inpaint_count=20,
        train_model="convnext_tiny.fb_in22k_ft_in1k_384",
        train_batch=32,
        train_micro_batch=32,
        train_epochs=10,
        train_patience=3,
        spectra_count=75,  # the test split's 75 per class; training sets are larger
    ),
    "paper": Profile(
        name="paper",
        description="a GPU box: the paper's counts (section 5.1) and SD 2.0 at 768 px",
        real_source="coco",
        real_train=10_000,
        real_val=1_900,
        real_test=1_500,
        gen_train=7_000,
        gen_val=1_900,
        gen_test=1_500,
        sd_model=SD2_768,
        sd_resolution=768,
        sd_steps=50,
        sd_guidance=7.5,
        sd_scheduler="EulerDiscreteScheduler",
        sd_batch=8,
        sd_dtype="float16",
        augment_count=3_000,
        inpaint_count=200,
        train_micro_batch=2,  # the paper's batch of 4 on its two GPUs; one GPU accumulates 2 steps
        build_runs_steps=0,  # hours per step: `make run PROFILE=paper`, then `make book` renders
    ),
}

_CHOICES = {
    "train_head": ("paper", "logit"),
    "train_precision": ("bf16", "fp16", "fp32"),
    "real_source": ("coco", "standin"),
    "sd_dtype": ("float16", "bfloat16", "float32"),
    "store_format": ("JPEG", "PNG"),
    "jpeg_subsampling": ("4:4:4", "4:2:2", "4:2:0"),
    "build_runs_steps": (0, 1),
    "inpaint_masks": ("objects", "free_form"),
}
_POSITIVE = {
    "real_train", "real_val", "real_test", "gen_train", "gen_val", "gen_test",
    "sd_resolution", "sd_steps", "sd_batch", "image_size", "min_side", "max_pixels",
    "download_workers", "download_retries", "inpaint_count", "spectra_count", "gradcam_count",
    "train_img_size", "ablation_seeds", "train_batch", "train_micro_batch", "train_epochs", "train_patience",
}
_NOT_OVERRIDABLE = ("name", "description", "augment")


def _coerce(name: str, value, kind: type):
    if kind is bool or isinstance(value, bool):
        raise ProfileError(f"setting '{name}' does not take {value!r}")
    if isinstance(value, str) and kind is not str:
        try:
            value = kind(value.replace("_", ""))
        except ValueError:
            raise ProfileError(f"setting '{name}' needs a {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind):
        raise ProfileError(f"setting '{name}' needs a {kind.__name__}, got {value!r}")
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ProfileError(f"setting '{name}' must be one of {', '.join(_CHOICES[name])}; got {value!r}")
    if name in _POSITIVE and value < 1:
        raise ProfileError(f"setting '{name}' must be at least 1; got {value!r}")
    if name == "jpeg_quality" and not 1 <= value <= 100:
        raise ProfileError(f"setting 'jpeg_quality' must be in 1..100; got {value!r}")
    if name == "inpaint_models":
        unknown = [m for m in value.split(",") if m not in INPAINT_MODELS]
        if unknown:
            raise ProfileError(f"setting 'inpaint_models' has unknown models {unknown}; "
                               f"valid: {', '.join(INPAINT_MODELS)}")
    if name == "ablation_models":
        ablation_map(value)  # raises with the valid form
    if name == "ablation_lr_grid":
        lr_grid(value)  # raises with the valid form
    if name == "ablation_variant_size" and value < 0:
        raise ProfileError(f"setting 'ablation_variant_size' is an input side in pixels, or 0 for no variant; "
                           f"got {value!r}")
    if name == "controls":
        unknown = [c for c in value.split(",") if c and c not in CONTROLS]
        if unknown:
            raise ProfileError(f"setting 'controls' has unknown controls {unknown}; valid: {', '.join(CONTROLS)}")
    if name == "train_checkpoint_minutes" and value < 0:
        raise ProfileError(f"setting 'train_checkpoint_minutes' must be 0 (epoch ends only) or more; got {value!r}")
    if name == "mask_ratio" and not 0.0 < value < 0.9:
        raise ProfileError(f"setting 'mask_ratio' must be between 0 and 0.9; got {value!r}")
    if name == "sd_resolution" and value % 8:
        raise ProfileError(f"setting 'sd_resolution' must be a multiple of 8; got {value!r}")
    return value


ABLATION_KEYS = ("vgg16", "resnet50", "efficientnet_b0")  # Table 3's other backbones


def ablation_map(value: str) -> dict[str, str]:
    """``"vgg16=vgg16.tv_in1k,..."`` -> ``{"vgg16": "vgg16.tv_in1k", ...}``, each key of Table 3 once."""
    out = {}
    for item in str(value).split(","):
        key, sep, model = (part.strip() for part in item.partition("="))
        if not sep or not key or not model or key in out:
            raise ProfileError(f"setting 'ablation_models' takes KEY=MODEL pairs separated by commas, "
                               f"each of {', '.join(ABLATION_KEYS)} once; got {value!r}")
        out[key] = model
    if sorted(out) != sorted(ABLATION_KEYS):
        raise ProfileError(f"setting 'ablation_models' needs exactly the keys {', '.join(ABLATION_KEYS)}; "
                           f"got {', '.join(out)}")
    return out


def lr_grid(value: str) -> list[float]:
    """``"3e-5,1e-4,3e-4"`` -> ``[3e-05, 0.0001, 0.0003]``: distinct learning rates in (0, 1), ascending."""
    try:
        rates = sorted({float(item) for item in str(value).split(",")})
    except ValueError:
        rates = []
    if not rates or not all(0 < r < 1 for r in rates) or len(rates) != len(str(value).split(",")):
        raise ProfileError(f"setting 'ablation_lr_grid' takes distinct learning rates in (0, 1) separated "
                           f"by commas, e.g. 3e-5,1e-4,3e-4; got {value!r}")
    return rates


def get_profile(name: str | None = None, overrides: dict | None = None) -> Profile:
    """The profile ``name`` (else $BOOK_PROFILE, else smoke) with ``overrides`` applied."""
    source = "the argument" if name else f"${ENV_VAR}"
    name = name or os.environ.get(ENV_VAR) or DEFAULT
    if name not in PROFILES:
        raise ProfileError(
            f"unknown profile {name!r} (from {source}); valid profiles: {', '.join(PROFILES)}"
        )
    profile = PROFILES[name]
    build, own = build_sets(), dict(overrides or {})
    if not build and not own:
        return profile
    kinds = {f.name: f.type for f in fields(Profile)}
    types = {"int": int, "float": float, "str": str}
    changes = {}
    for key, value in (build | own).items():
        if key not in kinds or key in _NOT_OVERRIDABLE:
            valid = ", ".join(k for k in kinds if k not in _NOT_OVERRIDABLE)
            where = f" (in ${SET_ENV})" if key not in own else ""
            raise ProfileError(f"unknown setting {key!r}{where}; valid settings: {valid}")
        changes[key] = _coerce(key, value, types[kinds[key]])
    return dataclasses.replace(profile, **changes)


def add_profile_arguments(parser, example: str = "real_train=100") -> None:
    """``--profile`` and ``--set KEY=VALUE`` on a command of ``python -m helpers``."""
    parser.add_argument("--profile", default=None,
                        help=f"one of {', '.join(PROFILES)} (default: ${ENV_VAR}, else {DEFAULT})")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help=f"override one setting of the profile, e.g. --set {example}")

"""Dress rehearsal of Chapters 1 and 3-5: a hand-made Hugging Face cache under the real hub ids.

No machine of the rehearsal reaches the model hub, so the models a profile names are written into
an isolated ``$HF_HOME/hub`` the way ``huggingface_hub`` itself lays a download out
(``models--ORG--NAME/blobs``, ``snapshots/<40-hex revision>`` of links to the blobs, and
``refs/main``). With ``HF_HUB_OFFLINE=1``, diffusers and timm then resolve the hub ids through
their own hub code, unchanged: the code path of a GPU box, minus the network.

- Stable Diffusion 2 (``-base``, the 768 px v-model, ``-inpainting``): pipelines of the same classes
  with the configuration files as published (``model_index.json``, the scheduler config with its
  prediction type, the UNet's sample size and input channels...). Their weights are random and
  their widths tiny (:func:`helpers.data.tiny_sd.build_tiny_pipeline`), or, with ``full_size``, the
  published architectures at full size (for timing on a GPU).
- timm models: the real architecture of each name with random weights, saved by timm's own
  ``save_for_hf`` (``model.safetensors`` and ``config.json``, as the ``timm/`` repositories hold).
- open_clip's weights (Chapter 6's probe, :func:`probe_hub_ids`): the open_clip architecture whose
  published weights the repository holds, with random weights, as ``open_clip_model.safetensors``
  (the file open_clip asks the hub for first) beside ``open_clip_config.json``.

Everything here is a stand-in: nothing computed with these weights is a finding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from ..core.download import file_digest
from ..core.files import atomic_write_text
from ..core.profiles import SD2_768, SD2_BASE_512, TINY_SD2, TINY_SD2_INPAINT

SD2_INPAINT = "stabilityai/stable-diffusion-2-inpainting"
MARKER = ".rehearsal.json"  # beside blobs/ and snapshots/: how the stand-in was built

# The scheduler configs as published in each repository (scheduler/scheduler_config.json).
_SCHEDULE = {"_diffusers_version": "0.8.0", "beta_end": 0.012, "beta_schedule": "scaled_linear",
             "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
             "set_alpha_to_one": False, "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None}
PNDM_EPSILON = {"_class_name": "PNDMScheduler", **_SCHEDULE, "prediction_type": "epsilon"}
DDIM_V = {"_class_name": "DDIMScheduler", **_SCHEDULE, "prediction_type": "v_prediction"}

# SD 2.0's components at their published sizes (unet/, vae/ and text_encoder/ config.json).
UNET = {"act_fn": "silu", "attention_head_dim": [5, 10, 20, 20], "block_out_channels": [320, 640, 1280, 1280],
        "center_input_sample": False, "cross_attention_dim": 1024,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "downsample_padding": 1, "dual_cross_attention": False, "flip_sin_to_cos": True, "freq_shift": 0,
        "in_channels": 4, "layers_per_block": 2, "mid_block_scale_factor": 1, "norm_eps": 1e-05,
        "norm_num_groups": 32, "out_channels": 4, "sample_size": 96,
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "use_linear_projection": True}
VAE = {"act_fn": "silu", "block_out_channels": [128, 256, 512, 512],
       "down_block_types": ["DownEncoderBlock2D"] * 4, "in_channels": 3, "latent_channels": 4,
       "layers_per_block": 2, "norm_num_groups": 32, "out_channels": 3, "sample_size": 768,
       "up_block_types": ["UpDecoderBlock2D"] * 4}
TEXT_ENCODER = {"architectures": ["CLIPTextModel"], "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0,
                "eos_token_id": 2, "hidden_act": "gelu", "hidden_size": 1024, "initializer_factor": 1.0,
                "initializer_range": 0.02, "intermediate_size": 4096, "layer_norm_eps": 1e-05,
                "max_position_embeddings": 77, "model_type": "clip_text_model", "num_attention_heads": 16,
                "num_hidden_layers": 23, "pad_token_id": 1, "projection_dim": 512, "vocab_size": 49408}
# CLIP's image preprocessing, shipped as feature_extractor/ (for a safety checker SD 2 does not have).
FEATURE_EXTRACTOR = dict(crop_size={"height": 224, "width": 224}, do_center_crop=True, do_convert_rgb=True,
                         do_normalize=True, do_resize=True, image_mean=[0.48145466, 0.4578275, 0.40821073],
                         image_std=[0.26862954, 0.26130258, 0.27577711], resample=3, size={"shortest_edge": 224})

# What differs between the three repositories.
SD_REPOS = {
    SD2_BASE_512: dict(pipeline="StableDiffusionPipeline", scheduler=PNDM_EPSILON, sample_size=64,
                       in_channels=4, resolution=512),
    SD2_768: dict(pipeline="StableDiffusionPipeline", scheduler=DDIM_V, sample_size=96, in_channels=4,
                  resolution=768),
    SD2_INPAINT: dict(pipeline="StableDiffusionInpaintPipeline", scheduler=PNDM_EPSILON, sample_size=64,
                      in_channels=9, resolution=512),
}


def model_index(repo_id: str) -> dict:
    """``model_index.json`` as published: no safety checker, CLIP's feature extractor."""
    spec = SD_REPOS[repo_id]
    return {"_class_name": spec["pipeline"], "_diffusers_version": "0.8.0",
            "feature_extractor": ["transformers", "CLIPImageProcessor"], "requires_safety_checker": False,
            "safety_checker": [None, None], "scheduler": ["diffusers", spec["scheduler"]["_class_name"]],
            "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}


def component_configs(repo_id: str) -> dict[str, dict]:
    """The published UNet, VAE and text-encoder configs of ``repo_id`` (what ``full_size`` builds)."""
    spec = SD_REPOS[repo_id]
    return {"unet": UNET | {"sample_size": spec["sample_size"], "in_channels": spec["in_channels"]},
            "vae": VAE | {"sample_size": spec["resolution"]},
            "text_encoder": dict(TEXT_ENCODER)}


def hub_ids_for(profile) -> list[str]:
    """Every hub id the profile's chapters load: its generator, SD 2's inpainting pipeline when
    Chapter 3 runs it, the timm repositories of the four backbones when their published weights
    are used, and Chapter 6's CLIP weights. Local folders and smoke's stand-ins are not hub ids."""
    from ..classify.backbones import models  # the classify package loads torch
    from ..classify.models import STANDINS, _hub_id

    ids = [profile.sd_model] if _is_hub_id(profile.sd_model) else []
    if "sd2_inpaint" in profile.inpaint_model_list and _is_hub_id(profile.sd_inpaint_model):
        ids.append(profile.sd_inpaint_model)
    if profile.train_pretrained == "timm":
        ids += [_hub_id(name) for name in models(profile).values() if name not in STANDINS]
    return list(dict.fromkeys(ids + probe_hub_ids(profile)))


def probe_hub_ids(profile) -> list[str]:
    """The hub repository of the probe's CLIP weights (``timm/vit_large_patch14_clip_224.openai`` for
    ViT-L-14 ``openai``), where open_clip fetches them; none for smoke's tiny file."""
    from ..classify.clip_features import hub_id  # the classify package loads torch

    repo = hub_id(profile.probe_model, profile.probe_pretrained)
    return [repo] if repo else []


def open_clip_model_for(repo_id: str) -> str | None:
    """The open_clip architecture whose published weights ``repo_id`` holds, or None."""
    import open_clip

    from ..classify.clip_features import hub_id

    return next((model for model, tag in open_clip.list_pretrained() if hub_id(model, tag) == repo_id), None)


def _is_hub_id(value: str) -> bool:
    return value not in (TINY_SD2, TINY_SD2_INPAINT) and value.count("/") == 1 and not Path(value).expanduser().exists()


def build_hub_cache(hf_home: Path, repo_ids, full_size: bool = False) -> dict[str, Path]:
    """Write each of ``repo_ids`` into ``hf_home/hub``; ``{repo_id: snapshot folder}``.

    A repository already there, built the same way, is kept. ``full_size``: SD 2's components at
    their published sizes (about 5 GB a pipeline; for a GPU box's timing run).
    """
    hub = Path(hf_home) / "hub"
    return {repo_id: _ensure_repo(hub, repo_id, full_size) for repo_id in repo_ids}


def _ensure_repo(hub: Path, repo_id: str, full_size: bool) -> Path:
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    how = {"repo_id": repo_id, "full_size": bool(full_size) and repo_id in SD_REPOS}
    if repo_id not in SD_REPOS and open_clip_model_for(repo_id):
        how["open_clip"] = open_clip_model_for(repo_id)  # a tiny test build is never kept for the real one
    snapshot = _snapshot(repo)
    if snapshot is not None and _read_json(repo / MARKER) == how:
        return snapshot
    shutil.rmtree(repo, ignore_errors=True)
    hub.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-", dir=hub) as tmp:
        files = Path(tmp) / "files"
        _build(repo_id, files, full_size)
        snapshot = _commit(repo, files)
    atomic_write_text(repo / MARKER, json.dumps(how))
    return snapshot


def _snapshot(repo: Path) -> Path | None:
    try:
        snapshot = repo / "snapshots" / (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    return snapshot if snapshot.is_dir() else None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _build(repo_id: str, target: Path, full_size: bool) -> None:
    if repo_id in SD_REPOS:
        _build_pipeline(repo_id, target, full_size)
    elif open_clip_model_for(repo_id):
        _build_open_clip(open_clip_model_for(repo_id), target)
    elif repo_id.startswith("timm/"):
        _build_timm(repo_id.split("/", 1)[1], target)
    else:
        raise ValueError(f"no stand-in for hub id {repo_id!r}: the rehearsal knows "
                         f"{', '.join(SD_REPOS)} and timm/<model name>")


def _commit(repo: Path, files: Path) -> Path:
    """Move ``files`` into ``repo`` as huggingface_hub stores a download: each file a blob named
    by its sha256, linked from ``snapshots/<revision>``; ``refs/main`` names the revision."""
    paths = sorted(p for p in files.rglob("*") if p.is_file())
    digests = {p: _sha256(p) for p in paths}
    revision = hashlib.sha1("".join(f"{p.relative_to(files).as_posix()}:{d}\n" for p, d in digests.items())
                            .encode()).hexdigest()
    snapshot = repo / "snapshots" / revision
    for path, digest in digests.items():
        blob = repo / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, blob)
        link = snapshot / path.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    atomic_write_text(repo / "refs" / "main", revision)
    return snapshot


def _sha256(path: Path) -> str:
    return file_digest(path, "sha256")


def _build_timm(name: str, target: Path) -> None:
    """timm's architecture of ``name`` with random weights, saved as the hub's ``timm/`` repos are."""
    import timm
    from timm.models import save_for_hf

    if not timm.is_model(name):
        raise ValueError(f"timm has no model {name!r}: no stand-in for timm/{name}")
    model = timm.create_model(name, pretrained=False)
    save_for_hf(model, str(target), safe_serialization=True)


def _build_open_clip(model_name: str, target: Path) -> None:
    """open_clip's ``model_name`` with random weights, as open_clip's files on the hub are laid out."""
    import open_clip
    from safetensors.torch import save_file

    from ..classify.clip_features import WEIGHTS_NAME

    model = open_clip.create_model(model_name, pretrained=None)
    target.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(target / WEIGHTS_NAME))
    preprocess = {k: model.visual.preprocess_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode")}
    _write_json(target / "open_clip_config.json",
                {"model_cfg": open_clip.get_model_config(model_name), "preprocess_cfg": preprocess})


def _build_pipeline(repo_id: str, target: Path, full_size: bool) -> None:
    """The tiny pipeline of SD 2's classes, its configuration files replaced by the published ones
    (and, with ``full_size``, its UNet, VAE and text encoder by random ones of published size)."""
    from transformers import CLIPImageProcessor

    from ..data.tiny_sd import build_tiny_pipeline

    spec = SD_REPOS[repo_id]
    build_tiny_pipeline(target, inpainting=spec["in_channels"] == 9)
    _write_json(target / "model_index.json", model_index(repo_id))
    _write_json(target / "scheduler" / "scheduler_config.json", spec["scheduler"])
    CLIPImageProcessor(**FEATURE_EXTRACTOR).save_pretrained(target / "feature_extractor")
    _write_published_tokenizer(target / "tokenizer")
    published = component_configs(repo_id)
    if full_size:
        _write_full_size(target, published)
        return
    # Tiny widths, but the published sample sizes (the pipeline's default side) and attention kind.
    _patch_json(target / "unet" / "config.json", sample_size=published["unet"]["sample_size"], upcast_attention=False)
    _patch_json(target / "vae" / "config.json", sample_size=published["vae"]["sample_size"])


def _write_published_tokenizer(folder: Path) -> None:
    """The tokenizer files as SD 2's repositories hold them (a byte-level BPE's ``vocab.json`` and
    ``merges.txt``, no ``tokenizer.json``), so that transformers builds the tokenizer from them as
    it does from the real files. The vocabulary is the tiny pipeline's own."""
    from ..data.tiny_sd import SPECIAL, _write_tokenizer_files

    for old in folder.iterdir():
        old.unlink()
    _write_tokenizer_files(folder)
    bos, eos = SPECIAL
    special = {"bos_token": bos, "eos_token": eos, "pad_token": "!", "unk_token": eos}
    _write_json(folder / "special_tokens_map.json", special)
    _write_json(folder / "tokenizer_config.json", special | {
        "add_prefix_space": False, "do_lower_case": True, "errors": "replace", "model_max_length": 77,
        "tokenizer_class": "CLIPTokenizer"})


def _write_full_size(target: Path, configs: dict[str, dict]) -> None:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    device = "cuda" if torch.cuda.is_available() else "cpu"  # random init of 865 M weights is slow on a CPU
    builders = {"unet": lambda c: UNet2DConditionModel(**c), "vae": lambda c: AutoencoderKL(**c),
                "text_encoder": lambda c: CLIPTextModel(CLIPTextConfig(**c))}
    for name, make in builders.items():
        config = {k: v for k, v in configs[name].items() if k not in ("architectures", "model_type")}
        with torch.device(device):
            module = make(config)
        shutil.rmtree(target / name)
        module.save_pretrained(target / name, safe_serialization=True)
        del module


def _write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _patch_json(path: Path, **changes) -> None:
    _write_json(path, json.loads(path.read_text(encoding="utf-8")) | changes)

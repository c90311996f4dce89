"""Chapter 1: the ``generate`` step -- Stable Diffusion 2.0 images from COCO captions, on N GPUs.

``torchrun --nproc_per_node=N -m helpers generate --profile P`` (or plain ``python`` for one
process): rank r of N takes plan rows r, r+N, r+2N, ... Each image has its own seed (a CPU
generator per image, so the picture does not depend on the batch or the number of GPUs). The
model's output is written losslessly (PNG, atomically) under ``raw/generated`` and then brought to
the common format under ``images/generated``; finished images are skipped, so a stopped run
resumes where it was (a finished image that no longer decodes is made again, and temporary files
of killed writers are removed). Rank 0 writes the ``generated`` part of the manifest at the end.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

from ..core import distributed
from ..core.files import atomic_write_bytes
from ..core.paths import data_root, profile_dir, relative_to_root, tiny_model_dir
from ..core.profiles import TINY_SD2
from ..core.stamps import check_or_write
from . import manifest as mf
from .images import BadImage, convert_file, is_valid_image, png_bytes
from .real_data import drop_damaged, format_settings, log_skipped, plan_paths, processed_path, sweep
from .tiny_sd import build_tiny_pipeline


class GenerationError(RuntimeError):
    """The generation step cannot run; the message says what to do."""


def model_location(profile) -> str:
    """What ``from_pretrained`` gets: the hub id, a local folder, or the tiny stand-in's folder."""
    if profile.sd_model == TINY_SD2:
        return str(build_tiny_pipeline(tiny_model_dir()))
    return profile.sd_model


def run_dtype(profile, device: torch.device) -> torch.dtype:
    return getattr(torch, profile.sd_dtype) if device.type == "cuda" else torch.float32


def from_pretrained(pipeline_cls, location: str, dtype: torch.dtype, setting: str):
    """``pipeline_cls.from_pretrained(location)`` (hub id or local folder), with an error that says
    where the weights go and which ``--set`` gives a local folder instead."""
    try:
        return pipeline_cls.from_pretrained(location, dtype=dtype, safety_checker=None,
                                            requires_safety_checker=False)
    except (OSError, ValueError) as exc:
        raise GenerationError(
            f"could not load the pipeline {location!r}: {exc}\n"
            f"With internet access it is downloaded once into the Hugging Face cache ($HF_HOME). "
            f"Offline, copy a snapshot of {location} into that cache, or give a local folder in "
            f"diffusers layout with --set {setting}=/path/to/folder.") from None


def load_pipeline(profile, device: torch.device):
    """The text-to-image pipeline on ``device``, with the profile's scheduler."""
    import diffusers

    location = model_location(profile)
    pipe = from_pretrained(diffusers.StableDiffusionPipeline, location, run_dtype(profile, device), "sd_model")
    scheduler_cls = getattr(diffusers, profile.sd_scheduler, None)
    if scheduler_cls is None:
        raise GenerationError(f"diffusers has no scheduler {profile.sd_scheduler!r}")
    pipe.scheduler = scheduler_cls.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    if device.type == "cuda":
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.enable_slicing()  # decode a batch one image at a time: fits 11 GB cards at 768 px
    return pipe


def generation_settings(profile) -> dict:
    return format_settings(profile) | dict(
        sd_model=profile.sd_model, sd_resolution=profile.sd_resolution, sd_steps=profile.sd_steps,
        sd_guidance=profile.sd_guidance, sd_scheduler=profile.sd_scheduler, seed=profile.seed)


def raw_path(profile, split: str, key: str) -> Path:
    return profile_dir(profile.name) / "raw" / "generated" / split / f"{key}.png"


def read_plan(profile) -> pd.DataFrame:
    path = plan_paths(profile)[1]
    if not path.exists():
        raise GenerationError(f"{path} does not exist: run `python -m helpers data --profile "
                              f"{profile.name}` first, which samples the captions to generate from")
    return pd.read_csv(path, keep_default_na=False)


def shard(plan: pd.DataFrame, rank: int, world: int) -> pd.DataFrame:
    """Rows of this rank: disjoint between ranks, together the whole plan."""
    return plan.iloc[rank::world]


def generate_batch(pipe, profile, prompts: list[str], seeds: list[int]):
    gens = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    with torch.inference_mode():
        out = pipe(prompt=prompts, generator=gens, num_inference_steps=profile.sd_steps,
                   guidance_scale=profile.sd_guidance, height=profile.sd_resolution,
                   width=profile.sd_resolution)
    return out.images


def generated_rows(profile, plan: pd.DataFrame) -> pd.DataFrame:
    root, rows = data_root(), []
    for r in plan.itertuples():
        target = processed_path(profile, "generated", r.split, r.key)
        if target.exists():
            rows.append(dict(path=relative_to_root(root, target), label=1, label_name="generated",
                             split=r.split, source="sd2" if profile.sd_model != TINY_SD2 else "tiny-sd2",
                             caption=r.caption, coco_id=r.coco_id, seed=r.seed,
                             model_id=profile.sd_model, scheduler=profile.sd_scheduler,
                             steps=profile.sd_steps, guidance=profile.sd_guidance,
                             orig_width=profile.sd_resolution, orig_height=profile.sd_resolution))
    return pd.DataFrame(rows)


def run(profile, limit: int | None = None) -> pd.DataFrame | None:
    """Generate this rank's missing images; rank 0 then writes the manifest part."""
    world = distributed.init()
    try:
        plan = read_plan(profile)
        if world.is_main:
            prepare_outputs(profile)
        distributed.barrier()
        mine = shard(plan, world.rank, world.size)
        if limit is not None:
            mine = mine.iloc[:limit]
        todo = missing(profile, mine)
        if world.is_main:
            print(profile.describe())
        print(f"rank {world.rank}/{world.size} on {world.device}: {len(mine)} images in its shard, "
              f"{len(mine) - len(todo)} already done", flush=True)
        skipped = generate_all(profile, todo, world) if todo else {}
        if skipped:
            log_skipped(profile, skipped, f"generate-rank{world.rank}")
        distributed.barrier()
        return write_manifest_part(profile, plan) if world.is_main else None
    finally:
        distributed.finish()


def prepare_outputs(profile) -> None:
    """Rank 0, before any rank writes: the settings stamp, the sweep of killed writers' files, and
    smoke's tiny model, built once before the other ranks load it."""
    check_or_write(profile_dir(profile.name) / "images" / "generated" / "settings.json",
                   generation_settings(profile), "generated images")
    sweep(profile_dir(profile.name))
    model_location(profile)


def missing(profile, rows: pd.DataFrame) -> list:
    """The rows whose image is not ready; a damaged one is made again from its seed (from the
    model's output when that is whole)."""
    drop_damaged([processed_path(profile, "generated", r.split, r.key) for r in rows.itertuples()])
    return [r for r in rows.itertuples() if not processed_path(profile, "generated", r.split, r.key).exists()]


def generate_all(profile, todo: list, world) -> dict[Path, str]:
    """Generate ``todo`` in batches of ``sd_batch`` on this rank's device; ``{file: reason}`` of
    outputs that could not be brought to the common format."""
    pipe = load_pipeline(profile, world.device)
    bar = tqdm(total=len(todo), desc=f"generate [rank {world.rank}]", unit="img", position=world.rank)
    started, skipped = time.perf_counter(), {}
    for start in range(0, len(todo), profile.sd_batch):
        batch = todo[start:start + profile.sd_batch]
        skipped |= generate_and_convert(pipe, profile, batch)
        bar.update(len(batch))
    bar.close()
    elapsed = time.perf_counter() - started
    print(f"rank {world.rank}: {len(todo)} images in {elapsed:.1f} s "
          f"({len(todo) / elapsed:.2f} images/s)", flush=True)
    return skipped


def generate_and_convert(pipe, profile, batch: list) -> dict[Path, str]:
    """One batch: the model's lossless outputs not on disk yet (PNG), then the common format."""
    need = [r for r in batch if not is_valid_image(raw_path(profile, r.split, r.key))]
    if need:
        images = generate_batch(pipe, profile, [r.caption for r in need], [r.seed for r in need])
        for r, img in zip(need, images):
            atomic_write_bytes(raw_path(profile, r.split, r.key), png_bytes(img))
    skipped = {}
    for r in batch:
        src = raw_path(profile, r.split, r.key)
        try:
            convert_file(src, processed_path(profile, "generated", r.split, r.key), profile)
        except BadImage as exc:
            skipped[src] = str(exc)
    return skipped


def write_manifest_part(profile, plan: pd.DataFrame) -> pd.DataFrame:
    rows = generated_rows(profile, plan)
    path = mf.write_part(profile.name, "generated", rows)
    print(f"{len(rows)} of {len(plan)} generated images ready; manifest: {path}")
    return rows

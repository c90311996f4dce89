"""Chapter 1: ``python -m helpers bench generate``, seconds per image of Stable Diffusion and the UNet's share of them.

Generation is the UNet run ``sd_steps`` times (twice the batch, for classifier-free guidance),
then one VAE decode. So the options that matter are the UNet's, and each is measured both ways
on the UNet alone, at the batch the pipeline runs: PyTorch's SDPA attention (diffusers' default
``AttnProcessor2_0``) against the classic one, fp16 against fp32, channels_last, and
``torch.compile`` of the UNet when asked. On a GPU the batch is searched (doubling until it does
not fit or stops paying); on a CPU it is the profile's. Then the whole pipeline runs with the
fastest options, and forward hooks on the UNet (synchronised with the GPU) time its calls:
s/image at the profile's steps, and the UNet's share of it.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass

import torch

from ..core.paths import tiny_model_dir
from ..data.generate import generate_batch, load_pipeline, run_dtype
from ..data.tiny_sd import build_tiny_pipeline
from .bench_timing import (
    device_name,
    free_memory,
    is_out_of_memory,
    report,
    synchronize,
    timed,
)

BATCH_LADDER = (1, 2, 4, 8, 16, 32)
PROMPT = "A photograph of a kitchen with a wooden table."


@dataclass(frozen=True)
class UNetOptions:
    batch: int
    fp16: bool = True
    sdpa: bool = True
    channels_last: bool = True
    compile: bool = False

    def label(self) -> str:
        flags = [("fp16" if self.fp16 else "fp32"), ("SDPA attention" if self.sdpa else "classic attention"),
                 ("channels_last" if self.channels_last else "contiguous"), ("compiled" if self.compile else "eager")]
        return f"batch {self.batch}, " + ", ".join(flags)


def base_options(batch: int, device: torch.device) -> UNetOptions:
    """The generation step's own settings (:func:`helpers.data.generate.load_pipeline`): fp16
    and channels_last on a GPU, float32 on a CPU; SDPA attention, eager."""
    gpu = device.type == "cuda"
    return UNetOptions(batch, fp16=gpu, channels_last=gpu)


def full_size_pipeline(profile, device: torch.device, configs: dict[str, dict]):
    """SD 2.0's UNet, VAE and text encoder at their published sizes with random weights (built
    on the device from ``configs``, :func:`helpers.rehearsal.hub.component_configs`), with the
    tiny stand-in's tokenizer and the profile's scheduler: the cost of the real model, no download."""
    import diffusers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tiny = build_tiny_pipeline(tiny_model_dir())
    dtype = run_dtype(profile, device)
    text_config = {k: v for k, v in configs["text_encoder"].items() if k not in ("architectures", "model_type")}
    with torch.device(device):
        unet = diffusers.UNet2DConditionModel(**configs["unet"]).to(dtype)
        vae = diffusers.AutoencoderKL(**configs["vae"]).to(dtype)
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config)).to(dtype)
    scheduler_cls = getattr(diffusers, profile.sd_scheduler)
    scheduler = scheduler_cls.from_pretrained(tiny / "scheduler")
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=CLIPTokenizer.from_pretrained(tiny / "tokenizer"),
        unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if device.type == "cuda":
        pipe.vae.enable_slicing()
    return pipe


def set_options(unet, opts: UNetOptions, device: torch.device) -> None:
    """Put the UNet in ``opts``'s state (fp16 only on a GPU: a CPU runs float32)."""
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    unet.set_attn_processor(AttnProcessor2_0() if opts.sdpa else AttnProcessor())
    dtype = torch.float16 if opts.fp16 and device.type == "cuda" else torch.float32
    if unet.dtype != dtype:
        unet.to(dtype=dtype)
    unet.to(memory_format=torch.channels_last if opts.channels_last else torch.contiguous_format)
    if opts.compile and "forward" not in vars(unet):
        unet.forward = torch.compile(unet.forward)  # the forward only: the module's hooks stay outside
    elif not opts.compile and "forward" in vars(unet):
        del unet.forward


def unet_seconds_per_image(pipe, profile, device: torch.device, opts: UNetOptions, repeats: int = 2) -> dict:
    """The UNet's seconds per image at the profile's steps, from timed calls at ``opts``'s batch
    (latents and text embeddings random, twice the batch for guidance); ``error`` when it does not fit."""
    unet = pipe.unet
    row = dataclasses.asdict(opts) | {"label": opts.label()}
    try:
        set_options(unet, opts, device)
        side = profile.sd_resolution // pipe.vae_scale_factor
        rows = 2 * opts.batch if profile.sd_guidance > 1 else opts.batch
        latents = torch.randn(rows, unet.config.in_channels, side, side, device=device, dtype=unet.dtype)
        text = torch.randn(rows, pipe.tokenizer.model_max_length, unet.config.cross_attention_dim,
                           device=device, dtype=unet.dtype)
        t = torch.tensor(500, device=device)

        def call():
            with torch.inference_mode():
                unet(latents, t, encoder_hidden_states=text)
        seconds = timed(call, device, repeats=repeats, warmup=3 if opts.compile else 2)
    except Exception as exc:  # noqa: BLE001 -- out of memory, or a compiler failure: a figure, not a crash
        if not (is_out_of_memory(exc) or opts.compile):
            raise
        free_memory(device)
        if "forward" in vars(unet):
            del unet.forward
        return row | {"error": "out of memory" if is_out_of_memory(exc) else f"compile failed: {exc}"[:300]}
    row["unet_s_per_image"] = round(seconds * profile.sd_steps / opts.batch, 4)
    print(f"bench generate: UNet, {opts.label()}: {row['unet_s_per_image']:.3f} s/image at "
          f"{profile.sd_steps} steps", flush=True)
    return row


class UNetClock:
    """Forward hooks timing every call of the UNet, waiting for the GPU before each clock reading."""

    def __init__(self, unet, device: torch.device):
        self.device, self.seconds, self.calls, self._start = device, 0.0, 0, 0.0
        self._handles = [unet.register_forward_pre_hook(self._before), unet.register_forward_hook(self._after)]

    def _before(self, module, args):
        synchronize(self.device)
        self._start = time.perf_counter()

    def _after(self, module, args, output):
        synchronize(self.device)
        self.seconds += time.perf_counter() - self._start
        self.calls += 1

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def time_pipeline(pipe, profile, device: torch.device, batch: int, rounds: int = 1) -> dict:
    """A short warm-up batch, then ``rounds`` timed batches of the whole pipeline: the seconds,
    and those spent in the UNet."""
    prompts, seeds = [PROMPT] * batch, list(range(batch))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # random weights: a decoded image may hold NaNs
        generate_batch(pipe, dataclasses.replace(profile, sd_steps=2), prompts, seeds)
        clock = UNetClock(pipe.unet, device)
        try:
            synchronize(device)
            start = time.perf_counter()
            for _ in range(rounds):
                generate_batch(pipe, profile, prompts, seeds)
            synchronize(device)
            seconds = time.perf_counter() - start
        finally:
            clock.close()
    return dict(seconds=round(seconds, 3), unet_seconds=round(clock.seconds, 3), unet_calls=clock.calls,
                unet_share=round(clock.seconds / seconds, 4))


def batch_search(pipe, profile, device: torch.device, deadline: float) -> list[dict]:
    """On a GPU, batches doubling until one does not fit, stops paying 3%, or time is up; on a
    CPU the profile's batch."""
    if device.type != "cuda":
        return [unet_seconds_per_image(pipe, profile, device, base_options(profile.sd_batch, device))]
    rows: list[dict] = []
    for batch in BATCH_LADDER:
        row = unet_seconds_per_image(pipe, profile, device, base_options(batch, device))
        rows.append(row)
        paid = len(rows) < 2 or "unet_s_per_image" not in rows[-2] or \
            row.get("unet_s_per_image", float("inf")) < 0.97 * rows[-2]["unet_s_per_image"]
        if "error" in row or not paid or time.monotonic() > deadline:
            break
    return rows


def fastest(rows: list[dict]) -> dict:
    good = [r for r in rows if "unet_s_per_image" in r]
    if not good:
        raise RuntimeError("bench generate: not even a batch of one fits in memory")
    return min(good, key=lambda r: r["unet_s_per_image"])


def bench_generate(profile, device: torch.device, *, sd_configs: dict | None = None, compile: bool = False,
                   rounds: int = 1, deadline: float = float("inf")) -> dict:
    """The batch search, each UNet option both ways, then the pipeline at the fastest options."""
    pipe = full_size_pipeline(profile, device, sd_configs) if sd_configs else load_pipeline(profile, device)
    search = batch_search(pipe, profile, device, deadline)
    best = base_options(fastest(search)["batch"], device)
    variants = [dataclasses.replace(best, channels_last=not best.channels_last)]
    if device.type == "cuda":  # fp16 and the attention kernels are GPU questions: classic attention at
        # 768 px on a CPU cost minutes of a rehearsal for a figure of no use there
        variants[:0] = [dataclasses.replace(best, fp16=False), dataclasses.replace(best, sdpa=False)]
    if compile:
        variants.append(dataclasses.replace(best, compile=True))
    rows = [unet_seconds_per_image(pipe, profile, device, opts) if time.monotonic() < deadline else
            dataclasses.asdict(opts) | {"label": opts.label(), "error": "skipped: time budget spent"}
            for opts in variants]
    chosen = fastest([fastest(search)] + rows)
    set_options(pipe.unet, UNetOptions(**{k: chosen[k] for k in ("batch", "fp16", "sdpa", "channels_last",
                                                                  "compile")}), device)
    timing = time_pipeline(pipe, profile, device, chosen["batch"], rounds)
    result = report(f"generate ({'SD 2.0 full-size, random weights' if sd_configs else profile.sd_model}, "
                    f"{profile.sd_resolution}px, {profile.sd_steps} steps, {chosen['label']})",
                    chosen["batch"] * rounds, timing["seconds"], device_name(device))
    print(f"bench generate: the UNet took {timing['unet_share']:.0%} of the time "
          f"({timing['unet_calls']} calls)", flush=True)
    del pipe
    free_memory(device)
    model = "SD 2.0 (full size, random weights)" if sd_configs else profile.sd_model
    return result | timing | dict(model=model, resolution=profile.sd_resolution, steps=profile.sd_steps, chosen=chosen,
                                  batch_search=search, variants=rows, compile_measured=compile,
                                  full_size=bool(sd_configs))

"""Chapter 1: a tiny, randomly initialised text-to-image pipeline of Stable Diffusion 2.0's family.

Same classes and the same kind of configuration as ``stabilityai/stable-diffusion-2``: a UNet with
linear projections in its transformer blocks and upcast attention, a KL autoencoder that shrinks
by 8, a CLIP text encoder with GELU (as SD 2's OpenCLIP encoder), a byte-level BPE tokenizer built
here, and a v-prediction scheduler with SD 2's noise schedule. Only the widths and depths are
tiny. It is written with ``save_pretrained`` and read back with the same ``from_pretrained`` call
that loads the hub id, so the ``smoke`` profile runs the real generation code. Its images are noise
shaped by random weights: stand-ins, never findings.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

# SD 2.0's noise schedule and objective (the scheduler config published with the model).
SD2_SCHEDULER = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction",
)
SPECIAL = ("<|startoftext|>", "<|endoftext|>")


def _byte_vocabulary() -> list[str]:
    """The 256 printable stand-ins of bytes used by byte-level BPE (as in GPT-2 and CLIP)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    chars = _byte_vocabulary()
    tokens = chars + [c + "</w>" for c in chars] + list(SPECIAL)
    vocab = {tok: i for i, tok in enumerate(tokens)}
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n", encoding="utf-8")
    return vocab_file, merges_file


def build_tiny_pipeline(target: Path, seed: int = 0, inpainting: bool = False,
                        scheduler_overrides: dict | None = None) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it into ``target`` (atomically).

    ``inpainting``: the UNet takes 9 channels (noisy latents, mask, masked-image latents), as in
    ``stabilityai/stable-diffusion-2-inpainting``. ``seed`` and ``scheduler_overrides`` make
    differently configured generators (smoke's stand-ins for other text-to-image models).
    """
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline

    target = Path(target)
    if (target / "model_index.json").exists():
        return target
    torch.manual_seed(seed)
    tokenizer = _tokenizer()
    # built in this order, so that each draws the same numbers from the seed as ever
    text_encoder, unet, vae = _text_encoder(tokenizer), _unet(inpainting), _vae()
    pipeline_cls = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    pipe = pipeline_cls(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=DDIMScheduler(**(SD2_SCHEDULER | (scheduler_overrides or {}))), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )
    _save_once(pipe, target)
    return target


WIDTH = 32  # the text encoder's width, and the UNet's cross-attention width


def _tokenizer():
    from transformers import CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = _write_tokenizer_files(Path(tmp))
        return CLIPTokenizer(str(vocab_file), str(merges_file), pad_token="!", model_max_length=77)


def _text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=WIDTH, intermediate_size=2 * WIDTH,
        num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
        hidden_act="gelu", projection_dim=WIDTH,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))


def _unet(inpainting: bool):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16, in_channels=9 if inpainting else 4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=WIDTH, attention_head_dim=(2, 4), use_linear_projection=True,
        upcast_attention=True, norm_num_groups=8,
    )


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(8, 16, 16, 16), norm_num_groups=8, sample_size=128,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )


def _save_once(pipe, target: Path) -> None:
    """``save_pretrained`` into a hidden folder beside ``target``, renamed into place: a reader sees
    a whole pipeline or none, and a process that finished first keeps its copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-sd2-", dir=target.parent))
    pipe.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / "model_index.json").exists():
            raise

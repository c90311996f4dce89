"""Every chapter: the bottom layer of the helpers, what every step and chapter stands on.

Profiles and their settings, where files live, files written whole, downloads, the paper's
numbers, the step records and the one bootstrap. Nothing here knows about images or models.

Re-exported here: the names of the modules that load without torch. ``distributed`` (torchrun's
world, the device of a one-process step) and ``checkpoints`` (user-given checkpoints, loaded with
``torch.load``) import torch at their top, so they are not imported here: import them as
``helpers.core.distributed`` and ``helpers.core.checkpoints``, where a step needs them.
"""

from . import paper, steps
from .download import BadDownload, DownloadError, Job, download_file, download_many, file_digest, md5sum
from .files import (
    atomic_torch_save,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    list_files,
    slug,
    sweep_stale_tmp,
)
from .paths import (
    REPO_ROOT,
    UnsafePathError,
    coco_dir,
    data_root,
    inside,
    profile_dir,
    relative_to_root,
    results_root,
    shown,
    tiny_model_dir,
)
from .profiles import (
    INPAINT_MODELS,
    PROFILES,
    AugmentRanges,
    Profile,
    ProfileError,
    add_profile_arguments,
    get_profile,
    parse_sets,
    to_sets,
)
from .stamps import StaleOutputError, check_or_write
from .stats import bca_interval, bootstrap, bootstrap_p_value, holm, paired_permutation_test, wilson_interval
from .steps import StepFailed, made_from_standins

__all__ = [
    "INPAINT_MODELS", "PROFILES", "REPO_ROOT", "AugmentRanges", "BadDownload", "DownloadError", "Job",
    "Profile", "ProfileError", "StaleOutputError", "StepFailed", "UnsafePathError", "add_profile_arguments",
    "atomic_torch_save", "atomic_write", "atomic_write_bytes", "atomic_write_text", "bca_interval",
    "bootstrap", "bootstrap_p_value", "holm", "paired_permutation_test", "wilson_interval", "check_or_write", "coco_dir", "data_root", "download_file", "download_many",
    "file_digest", "get_profile", "inside", "list_files", "made_from_standins", "md5sum", "paper",
    "parse_sets", "profile_dir", "relative_to_root", "results_root", "shown", "slug", "steps",
    "sweep_stale_tmp", "tiny_model_dir", "to_sets",
]

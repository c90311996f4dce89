"""Chapters 4-5: the classifier: training it, scoring images with it, and the metrics of the study.

Training (``python -m helpers train``, :mod:`.train`): the run's state (:mod:`.trainer`), the
global batch (:mod:`.batches`), the data (:mod:`.loaders`, :mod:`.dataset`), the loop
(:mod:`.loop`), checkpoints (:mod:`.checkpointing`, in mid-epoch :mod:`.preemption`) and records (:mod:`.records`), set up by
:mod:`.prepare`. Evaluation (``python -m helpers evaluate`` / ``predict``, :mod:`.evaluate`):
the classifier from its checkpoint (:mod:`.classifier`), which images (:mod:`.image_sets`),
the re-encodings (:mod:`.reencode`), prediction (:mod:`.prediction`), the step itself
(:mod:`.evaluation`), its files (:mod:`.eval_files`) and categories (:mod:`.categories`).
Chapter 4's training-time controls: their images (:mod:`.controls_data`, ``python -m helpers
controls``) and evaluations with the augmentation probe (:mod:`.controls`).
Chapter 6's robustness curves: the degradations and the robust-training augmentation
(:mod:`.degrade`, ``train --robust-aug``) and the step (:mod:`.robustness`, ``python -m helpers robustness``).
Chapter 6's CLIP linear probe (:mod:`.clip_features`, :mod:`.probe`, ``python -m helpers probe``) and
where the model looks (:mod:`.gradcam`, :mod:`.gradcam_step`, ``python -m helpers gradcam``).
The speed of every step on this machine: ``python -m helpers bench`` (:mod:`.bench` and its
``bench_*`` modules; ``bench all``, :mod:`.gpu_bench`, is ``make gpu-bench``; :mod:`.bench_report`).
Both go through the one model-input transform (:mod:`.transform`). Table 3's backbones:
:mod:`.backbones`; the models: :mod:`.models`; the metrics: :mod:`.metrics`.

The modules import torch at their top; timm and scikit-learn are imported where first used, so
importing the package does not load them. The steps' functions are reached through their modules:
``train.run``, ``evaluate.main``, ``evaluation.evaluate``, ``bench.run``, ``prepare.setup``.
"""

from . import (backbones, batches, bench, bench_generate, bench_report, bench_score, bench_timing, bench_train,
               categories, checkpointing, classifier, clip_features, controls, controls_data, dataset, degrade,
               eval_files, evaluate, evaluation, gpu_bench, gradcam, gradcam_step, image_sets, loaders, loop,
               metrics, models, preemption, prediction, prepare, probe, records, reencode, robustness, train,
               trainer, transform)
from .batches import BatchPlan, accumulation_steps, batch_plan
from .bench_report import bench_table
from .categories import category_table, load_categories
from .checkpointing import load_checkpoint, rng_state, save_best, save_last, set_rng_state
from .classifier import EvaluateError, checkpoint_path, default_checkpoint, lazy_classifier, load_classifier
from .clip_features import ProbeError
from .controls import own_test, probe_pairs, probe_summary, score_rows
from .dataset import DamagedImage, ManifestDataset, check_files, damaged_error, damaged_message, repair_hint
from .degrade import DEGRADATIONS, LEVELS, RobustAugment, degrade as degrade_image
from .eval_files import eval_dir, eval_name, load_result, two_class_metrics
from .evaluation import evaluate_conditions
from .gradcam import GradCamError, distribution, grad_cams, object_share
from .gradcam_step import load_figure, load_masses
from .image_sets import check_prepared, folder_images, image_file, image_parts
from .loaders import ShardSampler, build_loaders, robust_training, training_rows, validation_rows
from .loop import (accumulate, autocast_dtype, early_stopping, end_epoch, optimizer_step, peak_memory_mb,
                   stop_reason, train_epoch, train_step, validate)
from .metrics import (binary_metrics, bootstrap_ci, mcnemar, paired_bootstrap, paired_difference_ci,
                      paired_difference_test, roc_points, seed_mean, seed_mean_ci)
from .models import HEADS, STANDINS, build_model, count_flops, data_config, loss_and_prob
from .prediction import LABEL_NAMES, THRESHOLD, expand_paths, predict_images, predict_paths, probabilities
from .preemption import Preempted, SaveClock, mid_epoch_saver
from .prepare import determinism, prepare_model, seed_everything
from .probe import ProbeScorer, fit_probe
from .records import METRICS, check_settings, run_settings, write_config, write_metrics
from .reencode import common_format, parse_reencode, reencode_image
from .robustness import curve_name, load_curves, robustness_dir
from .train import run_dir
from .trainer import Trainer, TrainError
from .transform import ModelInput, model_input

__all__ = [
    "backbones", "batches", "bench", "categories", "checkpointing", "classifier", "controls", "controls_data",
    "own_test", "probe_pairs", "probe_summary", "score_rows", "dataset", "eval_files",
    "evaluate", "evaluation", "image_sets", "loaders", "loop", "metrics", "models", "preemption", "prediction",
    "prepare", "Preempted", "SaveClock", "mid_epoch_saver",
    "records", "reencode", "train", "trainer", "transform",
    "BatchPlan", "accumulation_steps", "batch_plan", "category_table", "load_categories", "load_checkpoint",
    "rng_state", "save_best", "save_last", "set_rng_state", "EvaluateError", "checkpoint_path",
    "default_checkpoint", "lazy_classifier", "load_classifier", "DamagedImage", "ManifestDataset",
    "check_files", "damaged_error", "damaged_message", "repair_hint", "eval_dir", "eval_name", "load_result",
    "two_class_metrics", "evaluate_conditions", "check_prepared", "folder_images", "image_file",
    "image_parts", "ShardSampler", "build_loaders", "training_rows", "validation_rows", "accumulate",
    "autocast_dtype", "early_stopping", "end_epoch", "optimizer_step", "peak_memory_mb", "stop_reason",
    "train_epoch", "train_step", "validate", "binary_metrics", "bootstrap_ci", "mcnemar", "paired_bootstrap",
    "paired_difference_ci", "paired_difference_test", "seed_mean", "seed_mean_ci",
    "roc_points", "HEADS", "STANDINS", "build_model", "count_flops", "data_config", "loss_and_prob",
    "LABEL_NAMES", "THRESHOLD", "expand_paths", "predict_images", "predict_paths", "probabilities",
    "determinism", "prepare_model", "seed_everything", "METRICS", "check_settings", "run_settings",
    "write_config", "write_metrics", "common_format", "parse_reencode", "reencode_image", "run_dir",
    "Trainer", "TrainError", "ModelInput", "model_input",
    "degrade", "robustness", "DEGRADATIONS", "LEVELS", "RobustAugment", "degrade_image", "robust_training",
    "curve_name", "load_curves", "robustness_dir",
    "bench_generate", "bench_report", "bench_score", "bench_timing", "bench_train", "gpu_bench", "bench_table",
    "clip_features", "probe", "ProbeError", "ProbeScorer", "fit_probe",
    "gradcam", "gradcam_step", "GradCamError", "distribution", "grad_cams", "object_share", "load_figure", "load_masses",
]

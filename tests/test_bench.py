"""Issue 14's benchmarks on a CPU, tiny: bench score, the UNet's share, the training step's host syncs, make gpu-bench's JSON and the book's table."""

from __future__ import annotations

import json

import pytest
import torch

from helpers.classify import bench_generate, bench_report, bench_train, gpu_bench
from helpers.classify.bench_score import bench_score
from helpers.core.profiles import get_profile

CPU = torch.device("cpu")


@pytest.fixture
def offline(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return data_root


@pytest.mark.slow
def test_bench_score_times_each_metric_on_four_tiny_images(offline):
    result = bench_score(get_profile("smoke", {"image_size": 192}), CPU, n_images=4)
    rates = result["images_per_s_by_metric"]
    assert sorted(rates) == ["inception_features", "lpips", "niqe", "sifid"]
    assert all(rate > 0 for rate in rates.values())
    assert result["standin_weights"] is True and "random images of 192x192" in result["note"]
    assert not (offline.parent / "torch").exists()  # the stand-ins went to a temporary TORCH_HOME


@pytest.mark.slow
def test_the_unet_share_of_generation_is_a_fraction(offline):
    profile = get_profile("smoke", {"sd_resolution": 64, "sd_steps": 2, "sd_batch": 1})
    result = bench_generate.bench_generate(profile, CPU)
    assert 0 < result["unet_share"] < 1
    assert result["unet_calls"] == 2  # one UNet call per step, the two guidance halves batched
    assert result["s_per_image"] > 0 and {r["sdpa"] for r in [result["chosen"], *result["variants"]]} == {True}
    # classic attention is measured on a GPU only; its switch works here too
    pipe = bench_generate.load_pipeline(profile, CPU)
    row = bench_generate.unet_seconds_per_image(pipe, profile, CPU, bench_generate.UNetOptions(1, fp16=False, sdpa=False,
                                                                                           channels_last=False))
    assert row["unet_s_per_image"] > 0 and "classic attention" in row["label"]


@pytest.mark.slow
def test_the_training_step_has_no_host_sync_and_the_check_would_see_one(offline, monkeypatch):
    profile = get_profile("smoke", {"train_img_size": 32})
    result = bench_train.bench_train(profile, CPU, steps=1)
    assert result["host_sync"]["in_source"] == [] and result["images_per_s"] > 0
    assert result["best"]["micro_batch"] == bench_train.PAPER_MICRO_BATCH

    def step_that_syncs(loss):
        return loss.item()
    monkeypatch.setattr(bench_train, "STEP_PATH", bench_train.STEP_PATH + (step_that_syncs,))
    assert bench_train.host_syncs_in_source() == [f"{__name__}.step_that_syncs: .item("]


def _fake_result(device: str, device_type: str, small: bool) -> dict:
    """What the measurements return, in their shape (the real ones run in the tests above)."""
    return gpu_bench.environment(CPU, small) | dict(
        device=device, device_type=device_type, budget_s=1.0,
        score={"images_per_s_by_metric": {"niqe": 50.0, "lpips": 400.0}},
        train={"images_per_s": 520.0, "mfu": 0.6, "paper_batch_images_per_s": 100.0, "img_size": 384,
               "best": {"micro_batch": 64, "images_per_s": 520.0, "label": "micro-batch 64, bf16, compiled", "compile": True},
               "sweep": [{"micro_batch": 64, "images_per_s": 400.0}, {"micro_batch": 128, "error": "out of memory"}],
               "variants": [{"label": "micro-batch 64, fp32", "images_per_s": 200.0}],
               "host_sync": {"runtime": "no synchronisation in one step"},
               "top_kernels": [{"name": "conv", "share": 0.5}, {"name": "vectorized_elementwise_kernel", "share": 0.2}]},
        generate={"s_per_image": 0.7, "unet_share": 0.9, "steps": 25},
        predict={"batch": 64, "images_per_s": 150.0, "model_only_images_per_s": 600.0, "bound": "decoding (host)"},
        data_path={"images_per_s": 300.0, "rows": [{"workers": 8}], "gpu_decode_images_per_s": 2000.0})


def test_the_json_has_every_field_and_each_target(offline, monkeypatch):
    monkeypatch.setattr(gpu_bench, "measure", lambda *a: _fake_result("NVIDIA H100 80GB HBM3", "cuda", False)
                        | {"seconds": 1.0, "figures": gpu_bench.figures(_fake_result("H100", "cuda", False)),
                           "limits": gpu_bench.limits(_fake_result("H100", "cuda", False))})
    path = gpu_bench.run(offline.parent / "bench", small=False, sd_configs={})
    assert path.name == "nvidia-h100-80gb-hbm3.json"
    data = json.loads(path.read_text())
    for field in ("device", "device_type", "date", "torch", "cuda", "small", "figures", "limits"):
        assert field in data
    figures = {f["key"]: f for f in data["figures"]}
    assert figures["train_mfu"]["target"] == ">= 0.55" and figures["train_mfu"]["met"] is True
    assert figures["generate_s_per_image"]["target"] == "<= 0.5" and figures["generate_s_per_image"]["met"] is False
    assert figures["score_niqe_images_per_s"]["target"] is None
    assert any(n.startswith("data path:") for n in data["limits"]) and any("memory" in n for n in data["limits"])


def test_a_full_size_run_needs_the_published_configs(offline):
    with pytest.raises(ValueError, match="component configs"):
        gpu_bench.run(offline.parent / "bench", small=False, sd_configs=None)


def test_a_small_run_meets_no_target(offline):
    rows = gpu_bench.figures(_fake_result("CPU x", "cpu", True))
    assert all(r["met"] is None for r in rows) and any(r["target"] for r in rows)


def _write(folder, name: str, result: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(result | {"figures": gpu_bench.figures(result), "limits": gpu_bench.limits(result)}))


def test_the_table_names_device_and_date_and_says_gpu_figures_are_missing(offline, tmp_path):
    folder = tmp_path / "bench"
    assert "GPU figures are still to be taken: no benchmark has been kept yet" in bench_report.bench_table(folder)
    cpu = _fake_result("CPU AMD EPYC (2 cores)", "cpu", True)
    _write(folder, "cpu.json", cpu)
    table = bench_report.bench_table(folder)
    assert table.startswith(bench_report.STILL_TO_TAKE)
    assert "CPU AMD EPYC (2 cores) (small stand-ins)" in table and cpu["date"] in table
    _write(folder, "h100.json", _fake_result("NVIDIA H100 80GB HBM3", "cuda", False))
    table = bench_report.bench_table(folder)
    assert bench_report.STILL_TO_TAKE not in table and "| yes | NVIDIA H100 80GB HBM3 |" in table


def test_the_readings_are_computed_from_the_kept_run(tmp_path):
    folder = tmp_path / "bench"
    assert "still to be measured" in bench_report.batch_tradeoff(folder) and bench_report.gpu_reading(folder) == ""
    _write(folder, "h100.json", _fake_result("NVIDIA H100 80GB HBM3", "cuda", False))
    tradeoff = bench_report.batch_tradeoff(folder)
    assert "**100 images/s**" in tradeoff and "**520 images/s**" in tradeoff and "5.2 times faster" in tradeoff
    assert "(3.3 min per 20,000-image epoch)" in tradeoff and "400 images/s without `torch.compile`" in tradeoff
    reading = bench_report.gpu_reading(folder, predict_folder=tmp_path / "none")
    assert "60% of the bf16 peak" in reading and "fp32: 200 images/s" in reading
    assert "take 20% of the device time" in reading and "less than training consumes" in reading
    assert "150 images/s from JPEG files against 600" in reading and "later change" not in reading
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "nvidia-h100-80gb-hbm3.json").write_text(json.dumps(
        [{"batch": 64, "device": "NVIDIA H100 80GB HBM3", "images_per_s": 310.0, "bound": "decoding (host)"}]))
    assert "310 images/s at batch 64" in bench_report.gpu_reading(folder, predict_folder=tmp_path / "p")

    # a run whose fastest option was eager names no compiled/eager pair
    eager = _fake_result("NVIDIA H100 80GB HBM3", "cuda", False)
    eager["train"]["best"] = dict(eager["train"]["best"], compile=False)
    _write(folder, "h100.json", eager)
    tradeoff = bench_report.batch_tradeoff(folder)
    assert "torch.compile" not in tradeoff and "**520 images/s** with micro-batch 64, bf16, compiled (0.6 min):" in tradeoff


def test_a_run_cut_short_leaves_what_it_measured(offline, monkeypatch, tmp_path):
    def measure(device, small, sd_configs, compile, budget_s, save):
        save({"score": {"niqe": 1.0}})
        raise KeyboardInterrupt  # the lease ends during training
    monkeypatch.setattr(gpu_bench, "measure", measure)
    with pytest.raises(KeyboardInterrupt):
        gpu_bench.run(tmp_path, small=True)
    (partial,) = tmp_path.glob("*.partial.json")
    assert json.loads(partial.read_text()) == {"score": {"niqe": 1.0}}
    assert bench_report.bench_files(tmp_path) == []  # never shown as a finished run


@pytest.mark.slow
def test_bench_predict_times_files_and_the_model_alone(offline):
    from helpers.classify.bench import bench_predict

    row = bench_predict(get_profile("smoke"), CPU, n_images=8, batch=4)
    assert row["images_per_s"] > 0 and row["model_only_images_per_s"] > 0
    assert row["bound"] in ("model", "decoding (host)") and row["batch"] == 4


def test_a_foreign_file_is_named_with_what_to_do(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"device": "x"}))
    with pytest.raises(bench_report.BenchReportError, match=r"results/bench/x.json lacks .*make gpu-bench"):
        bench_report.bench_table(tmp_path)

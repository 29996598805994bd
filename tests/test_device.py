"""Devices: choosing one, placing every tensor of a training step on it, and the GPU runs.

No GPU is needed for most of these. Device placement is checked on torch's
"meta" device, which holds no data and raises on any operation that mixes it
with a CPU tensor (as CUDA does), so a tensor left behind on the CPU by the
trainer fails here. The tests marked `needs_gpu` run only where torch sees a
CUDA GPU; elsewhere they skip with that reason.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import kdcore.device as devices
from kdcore.device import DeviceUnavailable, cpu_model, describe_device, resolve_device
from kdcore.losses import IGNORE_LABEL
from kdcore.models import ModelConfig, build_model
from kdcore.train import TrainConfig, Trainer, fit, seeded_model

ROOT = Path(__file__).resolve().parents[1]
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; torch sees none here")


@pytest.fixture
def fake_gpu(monkeypatch):
    """Pretend torch sees one GPU (nothing may actually run on it)."""
    monkeypatch.setattr(devices, "gpu_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "Test GPU")


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(devices, "gpu_available", lambda: False)


def test_auto_is_the_cpu_without_a_gpu(no_gpu):
    assert resolve_device("auto") == torch.device("cpu") == resolve_device(None)
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert describe_device("auto").startswith("CPU (") and "threads" in describe_device("cpu")


def test_auto_is_the_gpu_when_there_is_one(fake_gpu):
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    assert describe_device("auto") == "GPU 0: Test GPU"
    with pytest.raises(DeviceUnavailable, match="no GPU 3"):
        resolve_device("cuda:3")


def test_an_unavailable_or_unknown_device_says_so(no_gpu):
    with pytest.raises(DeviceUnavailable, match="CUDA GPU was asked for"):
        resolve_device("cuda")
    with pytest.raises(DeviceUnavailable, match="unknown device"):
        resolve_device("gpu please")
    with pytest.raises(DeviceUnavailable, match="not supported"):
        resolve_device("xpu")


def test_cpu_model_is_the_model_itself_on_the_cpu():
    m = build_model(ModelConfig(hidden=(4,)), (3,), 2)
    assert cpu_model(m) is m


def _image_data(n=48, classes=4, unlabelled=0):
    g = torch.Generator().manual_seed(0)
    X = torch.rand(n, 1, 8, 8, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    y[:unlabelled] = IGNORE_LABEL
    return X, y, torch.randn(n, classes, generator=g)


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
@pytest.mark.parametrize("loss", ["ce", "kd", "logits"])
def test_every_tensor_of_a_training_epoch_lives_on_the_trainers_device(arch, loss):
    # meta raises on any op mixing it with a non-scalar CPU tensor: the same mistakes CUDA would reject
    X, y, t = _image_data(unlabelled=20)
    cfg = ModelConfig(arch=arch, hidden=(16,), dropout=0.5, input_dropout=0.2, channels=(4,))
    model = seeded_model(lambda: build_model(cfg, (1, 8, 8), 4), 0)
    trainer = Trainer(model, X, y, TrainConfig(epochs=2, batch_size=16, jitter=2), seed=0,
                      teacher_logits=None if loss == "ce" else t, temperature=4.0, alpha=0.7, loss=loss,
                      X_val=X[:8], y_val=y[:8].clamp_min(0), device="meta")
    total_loss, n_batches, correct, n_lab = trainer._train_batches()
    assert total_loss.device.type == correct.device.type == "meta"
    assert n_batches == 3 and n_lab == 28           # every labelled example was seen once
    assert all(p.device.type == "meta" for p in model.parameters())
    state = [v for s in trainer.optimizer.state.values() for v in s.values() if torch.is_tensor(v) and v.dim()]
    assert state and all(v.device.type == "meta" for v in state)
    assert trainer.X.device.type == trainer.X_val.device.type == "meta"
    assert trainer.y_val.device.type == "cpu"       # compared with CPU logits (predict_logits)


def test_an_explicit_cpu_device_changes_no_number(digits):
    cfg, tc = ModelConfig(hidden=(16,), dropout=0.2), TrainConfig(epochs=3)
    runs = []
    for device in (None, "cpu"):
        model = seeded_model(lambda: build_model(cfg, digits.input_shape, digits.n_classes), 0)
        h = fit(model, digits.X_train, digits.y_train, tc, seed=0, X_val=digits.X_val, y_val=digits.y_val,
                device=device)
        runs.append([(l.train_loss, l.train_acc, l.val_loss, l.val_acc) for l in h.logs])
    assert runs[0] == runs[1]


def test_default_schedule_follows_the_device(fake_gpu):
    from kdcore.hinton import default_schedule
    assert default_schedule() == "full" and default_schedule("cpu") == "cpu"


def test_default_schedule_without_a_gpu(no_gpu):
    from kdcore.hinton import default_schedule
    assert default_schedule() == "cpu"
    with pytest.raises(DeviceUnavailable):
        default_schedule("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
def test_cli_cuda_without_a_gpu_exits_2_with_a_message():
    proc = subprocess.run([sys.executable, "-m", "kdcore", "hinton-mnist", "--device", "cuda"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 2
    assert "CUDA GPU was asked for" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_hinton_page_defaults_to_the_full_schedule_on_a_gpu(fake_gpu, mnist_root, open_page):
    at = open_page("pages/hinton_mnist.py")
    assert not at.exception
    assert at.radio(key="hinton_schedule").value == "full"
    assert at.toggle(key="hinton_gpu").value is True
    assert any("GPU 0: Test GPU" in c.value for c in at.caption)


def test_hinton_page_on_a_cpu_defaults_to_the_short_schedule(no_gpu, mnist_root, open_page):
    at = open_page("pages/hinton_mnist.py")
    assert not at.exception
    assert at.radio(key="hinton_schedule").value == "cpu"
    assert not [t for t in at.toggle if t.key == "hinton_gpu"]
    assert any("No GPU here" in c.value for c in at.caption)


# ---- on a real GPU only ----

@needs_gpu
def test_gpu_training_is_deterministic_and_close_to_the_cpu(digits):
    cfg, tc = ModelConfig(hidden=(64,), dropout=0.3), TrainConfig(epochs=5)
    caller_cuda = torch.cuda.get_rng_state()
    out = {}
    for device in ("cuda", "cuda", "cpu"):
        model = seeded_model(lambda: build_model(cfg, digits.input_shape, digits.n_classes), 0)
        h = fit(model, digits.X_train, digits.y_train, tc, seed=0, X_val=digits.X_val, y_val=digits.y_val,
                device=device)
        out.setdefault(device, []).append([l.val_acc for l in h.logs])
    assert torch.equal(torch.cuda.get_rng_state(), caller_cuda)     # the trainer used its own stream
    assert out["cuda"][0] == out["cuda"][1]                         # same seed, same numbers
    assert abs(out["cuda"][0][-1] - out["cpu"][0][-1]) < 0.03       # same batches, same init: same result


@needs_gpu
def test_gpu_distill_run_hands_back_cpu_models(digits, digits_teacher):
    from kdcore.distill import DistillRun
    from kdcore.presets import default_kd, default_student
    student, train = default_student("digits")
    run = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, student,
                     dataclasses.replace(train, epochs=2), default_kd("digits"), 0, device="cuda")
    run.step()
    mid = run.result()          # a result mid-run: CPU copies, training goes on on the GPU
    assert devices.model_device(mid.distilled).type == "cpu"
    assert devices.model_device(run.distilled).type == "cuda"
    run.step()
    assert run.done and devices.model_device(run.result().scratch).type == "cpu"


@needs_gpu
def test_gpu_hinton_tiny_end_to_end(mnist_root, tmp_path):
    from kdcore.hinton import run_hinton_mnist
    from kdcore.teachers import TeacherCache
    gpu = run_hinton_mnist("tiny", 0, mnist_root, TeacherCache(tmp_path / "g"), device="cuda")
    cpu = run_hinton_mnist("tiny", 0, mnist_root, TeacherCache(tmp_path / "c"), device="cpu")
    assert gpu.device.startswith("GPU") and cpu.device.startswith("CPU")
    assert all(devices.model_device(m).type == "cpu" for m in gpu.models.values())
    # one epoch on 2 000 images: other dropout masks move the errors by tens, a broken run by hundreds
    for k in ("teacher", "hard", "distilled", "omitted"):
        assert abs(gpu.errors[k] - cpu.errors[k]) <= 0.15 * gpu.n_test, k

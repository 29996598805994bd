"""The Hinton MNIST preset: its configs, the tiny schedule end to end, the CLI and the page."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kdcore.hinton import PAPER, PRESETS, HintonExperiment, preset_dataset, run_hinton_mnist
from kdcore.teachers import TeacherCache
from kdcore.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


def test_presets_are_the_papers_architecture():
    for name in ("cpu", "full"):
        p = PRESETS[name]
        assert p.teacher.hidden == (1200, 1200) and p.teacher.dropout == 0.5 and p.teacher.input_dropout == 0.2
        assert p.teacher_train.jitter == 2
        assert p.student.hidden == (800, 800) and p.student.dropout == 0 and p.student.input_dropout == 0
        assert p.student_train.jitter == 0 and p.student_train.weight_decay == 0
        assert p.temperature == 20 and p.omitted_class == 3
        assert p.train_subset is None and p.eval_subset is None
    assert PRESETS["full"].teacher_train.epochs > PRESETS["cpu"].teacher_train.epochs
    assert PAPER["teacher"] == 67 and PAPER["hard"] == 146 and PAPER["distilled"] == 74
    assert (PAPER["omitted"], PAPER["omitted_on_class"], PAPER["omitted_bias"], PAPER["omitted_bias_on_class"]) \
        == (206, 133, 109, 14)


def test_tiny_experiment_end_to_end(mnist_root, tmp_path):
    cache = TeacherCache(tmp_path / "teachers")
    stages = []
    res = run_hinton_mnist("tiny", seed=0, data_root=mnist_root, cache=cache,
                           on_epoch=lambda stage, log: stages.append(stage))
    assert stages == ["teacher", "students", "omitted"]
    assert not res.stopped and res.n_test == 1000
    e = res.errors
    assert set(PAPER) <= set(e)
    for k in ("teacher", "hard", "distilled", "omitted", "omitted_bias"):
        assert 0 <= e[k] <= res.n_test
    assert 0 <= e["omitted_bias_on_class"] <= res.n_test_class and 0 <= e["omitted_on_class"] <= res.n_test_class
    if e["bias"] >= 0:   # raising the 3's logit can only turn 3s right, never wrong
        assert e["omitted_bias_on_class"] <= e["omitted_on_class"]
    assert res.best_bias_errors <= e["omitted"]               # b = 0 is on the grid searched
    assert len(res.rows()) == 7 and res.rows()[0]["paper (errors)"] == 67
    # the teacher is cached: a second run does not train it again
    assert cache.trained == 1
    res2 = run_hinton_mnist("tiny", seed=0, data_root=mnist_root, cache=cache)
    assert cache.trained == 1                                # found in the cache
    assert res2.errors == res.errors                         # same seed, same numbers


def test_stopping_during_students_reports_what_exists(mnist_root, tmp_path):
    preset = dataclasses.replace(PRESETS["tiny"], student_train=TrainConfig(epochs=2, batch_size=128, lr=3e-3))
    ds = preset_dataset(preset, 0, mnist_root)
    exp = HintonExperiment(preset, ds, 0, TeacherCache(tmp_path / "t"))
    exp.run(on_epoch=lambda stage, log: stage == "students")     # stop after the students' first epoch
    assert exp.stopped and exp.stage == "students" and exp.pair.epoch == 1
    res = exp.result()
    assert res.stopped and {"teacher", "distilled", "hard"} <= set(res.errors)
    assert "omitted" not in res.errors and res.omitted_test_logits is None


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "kdcore", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_cli_missing_data_exits_2_without_traceback(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("no MNIST here")     # nothing can be downloaded into a file, online or not
    proc = _cli("hinton-mnist", "--data-root", str(not_a_folder), "--schedule", "tiny")
    assert proc.returncode == 2
    assert "MNIST" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout


def test_cli_help_and_bad_schedule(capsys):
    from kdcore.__main__ import main
    with pytest.raises(SystemExit) as ex:
        main(["--help"])
    assert ex.value.code == 0 and "hinton-mnist" in capsys.readouterr().out
    with pytest.raises(SystemExit) as ex:
        main(["hinton-mnist", "--schedule", "nope"])
    assert ex.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_cli_tiny_run_prints_progress_and_table(mnist_root, tmp_path):
    out = tmp_path / "res.json"
    proc = _cli("hinton-mnist", "--data-root", str(mnist_root), "--schedule", "tiny", "--seed", "0",
                "--cache", str(tmp_path / "c"), "--threads", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "teacher   epoch 1/1" in proc.stdout and "omitted   epoch 1/1" in proc.stdout
    assert "paper" in proc.stdout and "of which on 3s" in proc.stdout
    data = json.loads(out.read_text())
    assert data["errors"]["teacher"] >= 0 and data["preset"]["name"] == "tiny"


def test_hinton_page_tiny_run(mnist_root, open_page, wait_for_runs):
    from ui import runs
    # mnist_root is the session's KDLAB_DATA folder, where the page looks by default
    at = open_page("pages/hinton_mnist.py")
    assert not at.exception
    at.radio(key="hinton_schedule").set_value("tiny")
    next(b for b in at.button if b.label == "Run the Hinton MNIST experiment").click()
    at.run()
    assert not at.exception
    wait_for_runs(at)
    assert not at.exception, [e.value for e in at.exception]
    res = runs.result(at.session_state["current_runs"][("hinton", "mnist", 0)])
    assert "omitted_bias" in res.errors
    at.slider(key="hinton_bias").set_value(4.0)
    at.run()
    assert not at.exception
    assert any(name.startswith("Hinton tiny") for name in at.session_state["session_models"])


def test_hinton_page_without_mnist_shows_a_message(tmp_path, monkeypatch, open_page):
    from kdcore import data
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("KDLAB_DATA", str(not_a_folder))
    data._load_cached.cache_clear()
    try:
        at = open_page("pages/hinton_mnist.py")
        assert not at.exception
        assert any("MNIST could not be loaded" in e.value for e in at.error)
    finally:
        data._load_cached.cache_clear()

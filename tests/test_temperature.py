"""Temperature lab (issue 3): softmax limits, the class-similarity matrix, the gradient story
checked against autograd, the figures, and the page under AppTest (no training when T moves)."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from kdcore import temperature as tl
from kdcore.viz import temperature as tv

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/temperature.py"


def _logits(n=64, c=10, scale=4.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, c)) * scale


# ---- softmax and entropy limits ----

def test_entropy_approaches_log_classes_as_T_grows():
    z = _logits(20, 10)
    prev = tl.entropy(tl.soften_np(z, 0.5))
    for T in (1.0, 4.0, 20.0, 100.0, 1e4):
        h = tl.entropy(tl.soften_np(z, T))
        assert np.all(h >= prev - 1e-12), "entropy must not fall as T rises"
        prev = h
    assert np.allclose(prev, np.log(10), atol=1e-5)
    assert np.all(np.log(10) - prev >= 0)          # never above the uniform's entropy


def test_soft_targets_approach_one_hot_on_argmax_as_T_falls():
    z = _logits(20, 10)
    p = tl.soften_np(z, 1e-3)
    assert np.all(p.argmax(1) == z.argmax(1))
    assert np.allclose(p.max(1), 1.0, atol=1e-9)
    assert np.all(tl.entropy(p) < 1e-6)
    # huge logits stay finite (the max is subtracted before exp)
    big = tl.soften_np(np.array([1e4, 0.0, -1e4]), 0.01)
    assert np.all(np.isfinite(big)) and big[0] == pytest.approx(1.0)


def test_softmax_matches_torch_and_rows_sum_to_one():
    z = _logits(32, 7)
    for T in (0.5, 1.0, 3.0, 50.0):
        ours = tl.soften_np(z, T)
        ref = torch.softmax(torch.tensor(z) / T, dim=-1).numpy()
        assert np.allclose(ours, ref, atol=1e-12)
        assert np.allclose(ours.sum(1), 1.0)


def test_entropy_curve_matches_pointwise_softmax():
    v = _logits(1, 10)[0]
    temps = np.array([0.5, 1.0, 7.0, 50.0])
    H, top = tl.entropy_and_top(v, temps)
    for t, h, m in zip(temps, H, top):
        p = torch.softmax(torch.tensor(v) / t, -1)
        assert h == pytest.approx(float(-(p * p.log()).sum()), abs=1e-10)
        assert m == pytest.approx(float(p.max()), abs=1e-12)
    assert tl.CURVE_TEMPERATURES[0] == pytest.approx(0.5) and tl.CURVE_TEMPERATURES[-1] == pytest.approx(50)


# ---- class similarity ("dark knowledge") ----

def test_similarity_rows_sum_to_one_and_match_a_loop():
    z, y = _logits(300, 5), np.random.default_rng(1).integers(0, 5, 300)
    out = tl.TeacherOutputs.from_logits(z, y, 5)
    for T in (1.0, 4.0, 30.0):
        sim = out.similarity(T)
        assert np.allclose(sim.sum(1), 1.0)
        p = torch.softmax(torch.tensor(z) / T, -1).numpy()
        loop = np.stack([p[y == c].mean(0) for c in range(5)])
        assert np.allclose(sim, loop, atol=1e-12)


def test_similarity_of_a_class_without_examples_is_nan_not_wrong():
    z = _logits(30, 4)
    y = np.array([0, 1, 3] * 10)                     # class 2 absent
    sim = tl.TeacherOutputs.from_logits(z, y, 4).similarity(2.0)
    assert np.all(np.isnan(sim[2]))
    assert np.allclose(sim[[0, 1, 3]].sum(1), 1.0)
    assert tl.most_similar(sim)[2] == []            # nothing to say about a class never seen


def test_most_similar_excludes_the_class_itself_and_is_sorted():
    sim = np.array([[0.7, 0.1, 0.15, 0.05], [0.2, 0.6, 0.1, 0.1], [0.1, 0.3, 0.5, 0.1], [0.3, 0.2, 0.1, 0.4]])
    top = tl.most_similar(sim, k=3)
    assert [j for j, _ in top[0]] == [2, 1, 3]
    assert [j for j, _ in top[3]] == [0, 1, 2]
    for c, row in enumerate(top):
        assert c not in [j for j, _ in row]
        assert [p for _, p in row] == sorted([p for _, p in row], reverse=True)


def test_teacher_outputs_orders_by_entropy_and_is_made_once(digits, digits_teacher):
    out = tl.teacher_outputs(digits_teacher, digits.y_test.numpy(), digits.n_classes)
    assert tl.teacher_outputs(digits_teacher, digits.y_test.numpy(), digits.n_classes) is out
    ent = out.entropy_t1[out.confusing_order]
    assert np.all(np.diff(ent) <= 0)
    assert out.confusion_rank[out.confusing_order[0]] == 1
    assert np.allclose(out.similarity(4.0).sum(1), 1.0)
    # the teacher is good: a digit resembles itself most, at a moderate T
    assert np.all(np.argmax(out.similarity(2.0), 1) == np.arange(10))


# ---- the gradient story, against autograd ----

def _autograd_soft_gradient(z, v, T):
    """∂ KL(softmax(v/T) ‖ softmax(z/T)) / ∂z by autograd (float64)."""
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    vt = torch.tensor(v, dtype=torch.float64)
    log_p = torch.log_softmax(vt / T, -1)
    log_q = torch.log_softmax(zt / T, -1)
    kl = (log_p.exp() * (log_p - log_q)).sum()
    kl.backward()
    return zt.grad.numpy()


def test_soft_target_gradient_equals_autograd():
    rng = np.random.default_rng(2)
    for T in (0.5, 1.0, 4.0, 40.0):
        z, v = rng.normal(size=10) * 3, rng.normal(size=10) * 5
        assert np.allclose(tl.soft_target_gradient(z, v, T), _autograd_soft_gradient(z, v, T), atol=1e-14)


@pytest.mark.parametrize("offset", [0.0, 7.0])
def test_logit_matching_gradient_is_the_high_T_limit_of_autograd(offset):
    """Norm ratio and cosine of autograd's gradient vs (z−v)/(N·T²) → 1 as T grows.

    With offset ≠ 0 the raw logits do not have zero mean: the autograd gradient does not
    see the shift, and the formula (which centres) must still be its limit.
    """
    rng = np.random.default_rng(3)
    z, v = rng.normal(size=10) * 2, rng.normal(size=10) * 6 + offset
    errors = []
    for T in (1.0, 10.0, 100.0, 1000.0, 10000.0):
        g = _autograd_soft_gradient(z, v, T)
        m = tl.logit_matching_gradient(z, v, T)
        ratio = np.linalg.norm(g) / np.linalg.norm(m)
        cosine = g @ m / (np.linalg.norm(g) * np.linalg.norm(m))
        errors.append(max(abs(ratio - 1), 1 - cosine))
    assert errors[0] > 0.05                          # at T = 1 they really differ
    assert all(b < a for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 2e-4                          # the gap closes like 1/T
    story = tl.gradient_story(z, v, [1000.0])
    assert story.ratio[0] == pytest.approx(np.linalg.norm(_autograd_soft_gradient(z, v, 1000.0))
                                           / np.linalg.norm(tl.logit_matching_gradient(z, v, 1000.0)))


def test_T_squared_keeps_the_gradient_size_like_the_kd_loss():
    """story.scaled_norm is the gradient size of kdcore's T²·KL loss (autograd), flat at high T."""
    from kdcore.losses import soft_target_loss
    rng = np.random.default_rng(4)
    z, v = rng.normal(size=10), rng.normal(size=10) * 5
    temps = [2.0, 50.0, 500.0]
    story = tl.gradient_story(z, v, temps)
    for t, scaled, raw in zip(temps, story.scaled_norm, story.soft_norm):
        zt = torch.tensor(z[None], requires_grad=True)
        soft_target_loss(zt, torch.tensor(v[None]), t).sum().backward()
        assert scaled == pytest.approx(float(zt.grad.norm()), rel=1e-9)
        assert raw == pytest.approx(float(zt.grad.norm()) / t ** 2, rel=1e-9)
    zc, vc = z - z.mean(), v - v.mean()
    assert story.scaled_norm[-1] == pytest.approx(np.linalg.norm(zc - vc) / 10, rel=1e-2)
    assert story.soft_norm[-1] < story.soft_norm[0] / 1000      # without T² it vanishes


# ---- figures: valid plotly, each with titles and hover text ----

def test_every_figure_is_valid_plotly():
    rng = np.random.default_rng(5)
    v, z = rng.normal(size=10) * 5, rng.normal(size=10)
    names = [str(i) for i in range(10)]
    out = tl.TeacherOutputs.from_logits(_logits(50), rng.integers(0, 10, 50), 10)
    H, top = tl.entropy_and_top(v)
    story = tl.gradient_story(z, v)
    figs = [tv.input_image(rng.random((8, 8)), "image"),
            tv.input_point(rng.normal(size=(30, 2)), rng.integers(0, 2, 30), ["a", "b"], np.zeros(2), "point"),
            tv.probability_bars(names, [("T=1", tl.soften_np(v, 1), "#000"), ("T=4", tl.soften_np(v, 4), "#111")],
                                True, "bars"),
            tv.probability_bars(names, [("T=1", tl.soften_np(v, 1), "#000")], False, "bars"),
            tv.entropy_curve(tl.CURVE_TEMPERATURES, H, top, 4.0, 10, "entropy"),
            tv.similarity_heatmap(out.similarity(4.0), names, 4.0, True, "sim"),
            tv.similarity_heatmap(out.similarity(4.0), names, 4.0, False, "sim"),
            tv.gradient_ratio_figure(story, 4.0, "ratio"),
            tv.gradient_magnitude_figure(story, 4.0, tl.hard_gradient_norm(z, 3), "size")]
    for fig in figs:
        assert isinstance(fig, go.Figure)
        assert fig.layout.title.text
        for axis in ("xaxis", "yaxis"):
            ax = fig.layout[axis]
            assert ax.visible is False or ax.title.text, f"{fig.layout.title.text}: {axis} needs a title"
        assert all(t.hovertemplate or t.type == "heatmap" for t in fig.data)


# ---- the page ----

def _open(open_page, at_session: dict | None = None):
    at = open_page(PAGE, session=at_session)
    assert not at.exception, at.exception
    return at


def _specs(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _no_training(monkeypatch):
    """Any training from here on fails the test."""
    from kdcore import teachers, train

    def refuse(*args, **kwargs):
        raise AssertionError("the Temperature page trained something")
    monkeypatch.setattr(train.Trainer, "run_epoch", refuse)
    monkeypatch.setattr(teachers, "train_teacher", refuse)


def test_page_renders_with_a_cached_teacher_and_T_only_redraws(digits_teacher, monkeypatch, open_page):
    _no_training(monkeypatch)
    from ui import state
    at = _open(open_page)
    assert not any(b.label == "Train the teacher" for b in at.button)
    trained = state.teacher_cache().trained
    before = _specs(at)
    assert len(before) == 6
    at.select_slider(key="temperature_T").set_value(20.0).run()
    assert not at.exception, at.exception
    after = _specs(at)
    titles = [s["layout"]["title"]["text"] for s in after]
    assert any("T = 20" in t for t in titles)
    changed = [b["data"] != a["data"] or b["layout"] != a["layout"] for b, a in zip(before, after)]
    assert changed[0] is False                       # the input image does not depend on T
    assert all(changed[1:]), "every T-dependent chart must change"
    assert before[1]["data"][1]["y"] != after[1]["data"][1]["y"]   # the soft targets themselves
    # the log-scale toggle and another example: still no training, charts change
    at.toggle(key="temperature_log").set_value(False).run()
    assert _specs(at)[1]["layout"]["yaxis"].get("type") != "log"
    at.number_input(key="temperature_rank").set_value(5).run()
    assert not at.exception
    assert state.teacher_cache().trained == trained
    assert any("Stand-in student" in m.value for m in at.markdown)


def test_page_by_class_and_by_index_and_a_distilled_student(digits, digits_teacher, monkeypatch, open_page):
    from kdcore.models import build_model
    from kdcore.presets import default_student
    student = build_model(default_student("digits")[0], digits.input_shape, digits.n_classes)
    result = types.SimpleNamespace(distilled=student, kd=types.SimpleNamespace(temperature=4.0))
    _no_training(monkeypatch)
    import ui.runs
    monkeypatch.setattr(ui.runs, "distill_result", lambda ds: result if (ds.name, ds.seed) == ("digits", 0) else None)
    at = _open(open_page)
    bars = _specs(at)[1]
    assert len(bars["data"]) == 3 and "distilled student" in bars["data"][2]["name"]
    assert any("distilled student" in m.value for m in at.markdown)
    at.radio(key="temperature_pick").set_value("by class").run()
    at.selectbox(key="temperature_class").set_value(3).run()
    assert not at.exception
    assert "“3”" in _specs(at)[0]["layout"]["title"]["text"]
    at.radio(key="temperature_pick").set_value("by index").run()
    at.number_input(key="temperature_index").set_value(7).run()
    assert not at.exception
    assert "Test example 7" in _specs(at)[0]["layout"]["title"]["text"]


def test_page_on_2d_data_shows_the_point(monkeypatch, open_page):
    """moons, with a tiny teacher trained beforehand through the shared cache."""
    from kdcore.data import load_dataset
    from kdcore.models import ModelConfig
    from kdcore.teachers import TeacherSpec
    from kdcore.train import TrainConfig
    from ui import state
    spec = TeacherSpec("moons", 0, ModelConfig(hidden=(16,)), TrainConfig(epochs=2), seed=0)
    state.teacher_cache().get_or_train(spec, load_dataset("moons", 0))
    _no_training(monkeypatch)
    at = _open(open_page, {"dataset": "moons", "teacher_spec": {("moons", 0): spec}})
    first = _specs(at)[0]
    assert first["data"][-1]["name"] == "this example"
    assert len(_specs(at)) == 6


# ---- issue 13: the "current T" line stands at T, the legend keeps off the title ----

def _current_t_line_x(spec: dict) -> float:
    """The x, in data units, where plotly draws the vertical 'current T' line.

    Plotly places a shape's x0 in data units on a log axis (it converts them with the axis's d2r,
    unlike annotations, which want log10): so the line stands at T when x0 = T.
    """
    layout = spec["layout"]
    lines = [s for s in layout["shapes"] if s.get("xref") == "x" and s["x0"] == s["x1"] and s.get("yref") == "paper"]
    assert len(lines) == 1
    return float(lines[0]["x0"])


@pytest.mark.parametrize("T", [0.5, 4.0, 20.0])
def test_current_T_line_stands_at_T_on_the_log_axis(T):
    rng = np.random.default_rng(1)
    v, z = rng.normal(size=10) * 5, rng.normal(size=10)
    H, top = tl.entropy_and_top(v)
    story = tl.gradient_story(z, v)
    for f in (tv.entropy_curve(tl.CURVE_TEMPERATURES, H, top, T, 10, "entropy"),
              tv.gradient_ratio_figure(story, T, "ratio"),
              tv.gradient_magnitude_figure(story, T, tl.hard_gradient_norm(z, 3), "size")):
        spec = f.to_dict()
        assert spec["layout"]["xaxis"]["type"] == "log"
        assert _current_t_line_x(spec) == pytest.approx(T)
        # the marker of the curve at T sits on the same x
        marker_x = [x for t in spec["data"] if t.get("mode") == "markers" for x in t["x"]]
        assert marker_x and all(x == pytest.approx(T) for x in marker_x)


def test_labels_gradient_line_stands_at_its_norm_on_the_log_y_axis():
    rng = np.random.default_rng(2)
    v, z = rng.normal(size=10) * 5, rng.normal(size=10)
    hard = tl.hard_gradient_norm(z, 3)
    spec = tv.gradient_magnitude_figure(tl.gradient_story(z, v), 4.0, hard, "size").to_dict()
    hlines = [s for s in spec["layout"]["shapes"] if s.get("xref") == "paper"]
    assert spec["layout"]["yaxis"]["type"] == "log"
    assert len(hlines) == 1 and hlines[0]["y0"] == pytest.approx(hard)
    # annotations, unlike shapes, take log10 of the value on a log axis
    assert spec["layout"]["annotations"][0]["y"] == pytest.approx(np.log10(hard))


def test_probability_legend_keeps_off_the_title_with_three_series():
    rng = np.random.default_rng(3)
    v = rng.normal(size=10) * 5
    series = [("teacher, T = 1 (H = 0.123 nats)", tl.soften_np(v, 1), "#000"),
              ("teacher, T = 4 (H = 1.234 nats)", tl.soften_np(v, 4), "#111"),
              ("distilled student, T = 4 (H = 1.111 nats)", tl.soften_np(v, 3), "#222")]
    for log_scale in (True, False):
        layout = tv.probability_bars([str(i) for i in range(10)], series, log_scale, "a long title").to_dict()["layout"]
        legend = layout["legend"]
        # below the plot area (the title is above it): a legend anchored at y >= 1 prints over the title;
        # the lab's legends stand at the bottom of the figure (container-anchored)
        below_plot = legend.get("y", 1.02) < 0 and legend.get("yanchor", "auto") in ("top", "auto")
        at_figure_bottom = legend.get("yref") == "container" and legend.get("y") == 0 and legend.get("yanchor") == "bottom"
        assert below_plot or at_figure_bottom

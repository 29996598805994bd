"""The engine: datasets, models, trainer, metrics, teacher cache, determinism."""

import json
import math
import threading

import pytest
import torch
import torch.nn.functional as F

from kdcore.data import DatasetUnavailable, labelled_mask, load_dataset
from kdcore.distill import KDConfig, distill_and_compare
from kdcore.metrics import agreement, confusion_matrix, evaluate, mean_kl
from kdcore.models import ModelConfig, build_model, model_bytes, param_count
from kdcore.teachers import TeacherCache, TeacherSpec
from kdcore.train import TrainConfig, fit, jitter_images, predict_logits, seeded_model


# ---- datasets -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,shape,n_classes", [("digits", (1, 8, 8), 10), ("moons", (2,), 2),
                                                  ("spirals", (2,), 3)])
def test_builtin_datasets_have_disjoint_stratified_splits(name, shape, n_classes):
    ds = load_dataset(name, 0)
    assert ds.input_shape == shape and ds.n_classes == n_classes
    n = len(ds.y_train) + len(ds.y_val) + len(ds.y_test)
    assert ds.X_train.shape[1:] == shape and ds.X_train.dtype == torch.float32
    assert 0.55 < len(ds.y_train) / n < 0.65 and 0.15 < len(ds.y_test) / n < 0.25
    for split in ("train", "val", "test"):
        assert set(ds.split(split)[1].tolist()) == set(range(n_classes))


def test_splits_are_deterministic_per_seed():
    a, b = load_dataset("digits", 3), load_dataset("digits", 3, data_root=None)
    assert a is b  # memoised
    from kdcore.data import _load_cached
    _load_cached.cache_clear()
    c = load_dataset("digits", 3)
    assert torch.equal(a.X_train, c.X_train) and torch.equal(a.y_test, c.y_test)
    d = load_dataset("digits", 4)
    assert not torch.equal(a.y_train, d.y_train)


def test_unknown_dataset_is_a_readable_error():
    with pytest.raises(DatasetUnavailable, match="Unknown dataset"):
        load_dataset("cifar", 0)


def test_missing_mnist_says_where_to_put_the_files(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        load_dataset("mnist", 0, data_root=tmp_path / "empty")
    assert str(tmp_path / "empty" / "MNIST" / "raw") in str(err.value)


def test_mnist_loads_from_the_official_files(mnist_root):
    ds = load_dataset("mnist", 0, data_root=mnist_root)
    assert ds.X_train.shape == (55000, 1, 28, 28) and len(ds.y_val) == 5000 and len(ds.y_test) == 10000
    assert 0.0 <= float(ds.X_test.min()) and float(ds.X_test.max()) <= 1.0


def test_labelled_mask_keeps_the_fraction_per_class(digits):
    m = labelled_mask(digits.y_train, 0.1, seed=0)
    assert abs(int(m.sum()) - 0.1 * len(m)) <= 10
    for c in range(10):
        assert m[digits.y_train == c].sum() >= 1
    assert torch.equal(m, labelled_mask(digits.y_train, 0.1, seed=0))


# ---- models and metrics ---------------------------------------------------------------------------

def test_parameter_count_and_bytes_by_hand():
    m = build_model(ModelConfig(hidden=(32, 16)), (1, 8, 8), 10)
    expected = 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert param_count(m) == expected and model_bytes(m) == 4 * expected and model_bytes(m, 4) == expected // 2
    cnn = build_model(ModelConfig(arch="cnn", hidden=(32,), channels=(8, 16)), (1, 28, 28), 10)
    assert cnn(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert param_count(cnn) == (8 * 9 + 8) + (16 * 8 * 9 + 16) + (16 * 7 * 7 * 32 + 32) + (32 * 10 + 10)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError):
        ModelConfig(hidden=(0,))
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError):
        KDConfig(alpha=1.5)


def test_metrics_against_hand_computations():
    t = torch.tensor([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    s = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 1, 2, 0])
    assert agreement(s, t) == 0.5
    kl = sum(float(F.kl_div(F.log_softmax(s[i], 0), F.softmax(t[i], 0), reduction="sum")) for i in range(4)) / 4
    assert math.isclose(mean_kl(t, s), kl, rel_tol=1e-6)
    cm = confusion_matrix(s, y, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 0, 1], [0, 0, 1]]


def test_jitter_shifts_each_image_by_at_most_k_pixels():
    x = torch.zeros(50, 1, 8, 8)
    x[:, 0, 4, 4] = 1.0
    out = jitter_images(x, 2, torch.Generator().manual_seed(0))
    pos = out.reshape(50, -1).argmax(1)
    rows, cols = pos // 8, pos % 8
    assert out.sum() == 50 and (rows - 4).abs().max() <= 2 and (cols - 4).abs().max() <= 2
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 5  # really random per image
    # a shift is a translation with zero fill: compare with torch.roll on an interior pattern
    single = jitter_images(x[:1], 2, torch.Generator().manual_seed(1))
    r, c = int(single[0, 0].argmax()) // 8 - 4, int(single[0, 0].argmax()) % 8 - 4
    assert torch.equal(single, torch.roll(x[:1], (r, c), dims=(2, 3)))


# ---- training -------------------------------------------------------------------------------------

def test_training_learns_and_callbacks_can_stop(digits):
    model = seeded_model(lambda: build_model(ModelConfig(hidden=(32,)), digits.input_shape, 10), 0)
    seen = []
    hist = fit(model, digits.X_train, digits.y_train, TrainConfig(epochs=10, lr=1e-2), seed=0,
               X_val=digits.X_val, y_val=digits.y_val, callbacks=[lambda log: seen.append(log) or log.epoch == 4])
    assert [l.epoch for l in seen] == [1, 2, 3, 4] and hist.stopped_early and hist.epochs_run == 4
    assert seen[-1].val_acc > 0.8 and seen[-1].train_loss < seen[0].train_loss

    stop = threading.Event()
    stop.set()
    model2 = build_model(ModelConfig(hidden=(8,)), digits.input_shape, 10)
    assert fit(model2, digits.X_train, digits.y_train, TrainConfig(epochs=5), stop=stop).epochs_run == 1


def test_same_seed_same_numbers(digits, digits_teacher):
    kwargs = dict(student=ModelConfig(hidden=(16,)), train=TrainConfig(epochs=3, lr=1e-2),
                  kd=KDConfig(4.0, 0.9, labelled_fraction=0.2))
    a = distill_and_compare(digits, digits_teacher.logits, digits_teacher.metrics, seed=1, **kwargs)
    b = distill_and_compare(digits, digits_teacher.logits, digits_teacher.metrics, seed=1, **kwargs)
    c = distill_and_compare(digits, digits_teacher.logits, digits_teacher.metrics, seed=2, **kwargs)
    assert a.distilled_metrics == b.distilled_metrics and a.scratch_metrics == b.scratch_metrics
    assert a.distilled_history.to_records()[-1]["val_loss"] == b.distilled_history.to_records()[-1]["val_loss"]
    assert a.distilled_metrics != c.distilled_metrics


def test_distilled_and_scratch_start_from_the_same_weights(digits, digits_teacher):
    from kdcore.distill import DistillRun
    run = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, ModelConfig(hidden=(16,)),
                     TrainConfig(epochs=1), KDConfig(), seed=0)
    for p, q in zip(run.distilled.parameters(), run.scratch.parameters()):
        assert torch.equal(p, q) and p is not q


# ---- teacher cache --------------------------------------------------------------------------------

def tiny_spec(**kw):
    return TeacherSpec("digits", 0, ModelConfig(hidden=(32,)), TrainConfig(epochs=2, lr=1e-2), **kw)


def test_teacher_cache_hit_skips_training(tmp_path, digits):
    cache = TeacherCache(tmp_path)
    t1 = cache.get_or_train(tiny_spec(), digits)
    assert cache.trained == 1 and not t1.from_cache
    assert cache.get_or_train(tiny_spec(), digits) is t1 and cache.trained == 1   # memory
    fresh = TeacherCache(tmp_path)                                                # a new process: disk
    t2 = fresh.get_or_train(tiny_spec(), digits)
    assert fresh.trained == 0 and t2.from_cache
    assert torch.equal(t2.logits["test"], t1.logits["test"]) and t2.metrics == t1.metrics
    assert tiny_spec().key != tiny_spec(seed=1).key
    assert t1.logits["train"].shape == (len(digits.y_train), 10)
    assert torch.allclose(t1.logits["val"], predict_logits(t1.model, digits.X_val))


@pytest.mark.parametrize("damage", ["truncate", "garbage_json", "wrong_shape"])
def test_corrupted_cache_file_is_retrained_not_a_crash(tmp_path, digits, damage):
    TeacherCache(tmp_path).get_or_train(tiny_spec(), digits)
    key = tiny_spec().key
    weights, meta = tmp_path / f"{key}.safetensors", tmp_path / f"{key}.json"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:50])
    elif damage == "garbage_json":
        meta.write_text("{not json")
    else:
        from safetensors.torch import save_file
        save_file({"1.weight": torch.zeros(3, 3)}, str(weights))
    cache = TeacherCache(tmp_path)
    t = cache.get_or_train(tiny_spec(), digits)
    assert cache.trained == 1 and not t.from_cache and t.metrics["accuracy"] > 0.5
    assert json.loads(meta.read_text())["spec"]["dataset"] == "digits"   # rewritten


def test_shared_teacher_is_not_modified_by_a_clone(digits_teacher):
    clone = digits_teacher.clone_model()
    with torch.no_grad():
        for p in clone.parameters():
            p.zero_()
    assert any(float(p.detach().abs().sum()) > 0 for p in digits_teacher.model.parameters())
    assert all(p.requires_grad for p in clone.parameters())


def test_default_teacher_is_good_and_evaluated_once(digits, digits_teacher):
    assert digits_teacher.metrics["accuracy"] > 0.95
    again = evaluate(digits_teacher.model, digits.X_test, digits.y_test)
    assert again["accuracy"] == digits_teacher.metrics["accuracy"]


def test_concurrent_trainings_do_not_change_each_others_numbers(digits):
    """Dropout and init use torch's global RNG; a second thread training at the same time (as
    when Streamlit starts a rerun while the stopped run finishes its epoch) must not change them."""
    cfg, train = ModelConfig(hidden=(64,), dropout=0.5), TrainConfig(epochs=3, lr=1e-2)

    def run(seed):
        model = seeded_model(lambda: build_model(cfg, digits.input_shape, 10), seed)
        fit(model, digits.X_train, digits.y_train, train, seed=seed)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    alone = run(0)
    results = {}
    threads = [threading.Thread(target=lambda s=s: results.setdefault(s, run(s))) for s in (0, 1, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert torch.equal(results[0], alone)
    assert not torch.equal(results[1], alone)


def test_hard_label_control_equals_plain_cross_entropy_on_the_teachers_argmax(digits, digits_teacher):
    """The control student: the same init and batches as the distilled one, cross-entropy on the
    teacher's argmax over the whole transfer set; it equals `fit` on those labels to 1e-6."""
    import copy
    from kdcore.distill import DistillRun, KDConfig
    from kdcore.models import ModelConfig, build_model
    from kdcore.train import TrainConfig, fit, seeded_model
    student, train = ModelConfig(hidden=(16,)), TrainConfig(epochs=3, lr=1e-2)
    kd = KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.1)
    run = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, student, train, kd, seed=3, control=True)
    init = seeded_model(lambda: build_model(student, digits.input_shape, digits.n_classes), 3)
    assert all(torch.equal(a, b) for a, b in zip(init.state_dict().values(), run.hard.state_dict().values()))
    while not run.done:
        run.step()
    res = run.result()
    reference = copy.deepcopy(init)
    hist = fit(reference, digits.X_train, digits_teacher.logits["train"].argmax(1), train, seed=3, loss="ce",
               X_val=digits.X_val, y_val=digits.y_val)
    for a, b in zip(reference.state_dict().values(), res.hard.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)
    assert [l.train_loss for l in hist.logs] == pytest.approx([l.train_loss for l in res.hard_history.logs], abs=1e-6)
    # the split of the gain adds up
    assert res.gain == pytest.approx(res.gain_from_teacher_labels + res.gain_from_soft_targets, abs=1e-12)
    assert "come from the teacher's labels alone" in res.summary()
    # without the control, the pair is unchanged (same numbers as before)
    pair = DistillRun(digits, digits_teacher.logits, digits_teacher.metrics, student, train, kd, seed=3)
    while not pair.done:
        pair.step()
    assert pair.result().distilled_metrics == res.distilled_metrics and pair.result().hard is None

"""Default settings per dataset, in one place: the app, the docs and the benchmarks use these.

The digits defaults were chosen by measurement (docs/results.md, made by
`python -m bench.results_digits`): they are the settings where distillation
really helps, not the first ones that came to mind. Uploaded datasets (`user-<fingerprint>`)
get defaults derived from their size (`uploaded_defaults`).
"""

from __future__ import annotations

from dataclasses import dataclass

from kdcore.distill import KDConfig
from kdcore.models import ModelConfig
from kdcore.teachers import TeacherSpec
from kdcore.train import TrainConfig

# A big, regularized teacher: wide layers, dropout on inputs and hidden units.
TEACHER_MODELS = {
    "digits": ModelConfig(hidden=(512, 512), dropout=0.5, input_dropout=0.2),
    "moons": ModelConfig(hidden=(128, 128), dropout=0.1),
    "spirals": ModelConfig(hidden=(256, 256), dropout=0.1),
    "mnist": ModelConfig(hidden=(800, 800), dropout=0.5, input_dropout=0.2),
    "fashion_mnist": ModelConfig(hidden=(800, 800), dropout=0.5, input_dropout=0.2),
}
TEACHER_TRAINING = {
    "digits": TrainConfig(epochs=40, batch_size=64, lr=3e-3),
    "moons": TrainConfig(epochs=40, batch_size=64, lr=3e-3),
    "spirals": TrainConfig(epochs=80, batch_size=64, lr=1e-2),
    # MNIST-size teachers cost ~10 s/epoch on 2 CPU cores: a short schedule by default
    "mnist": TrainConfig(epochs=5, batch_size=128, lr=1e-3),
    "fashion_mnist": TrainConfig(epochs=5, batch_size=128, lr=1e-3),
}
# A small student, ~100× fewer parameters than the digits teacher.
STUDENT_MODELS = {
    "digits": ModelConfig(hidden=(16,)),
    "moons": ModelConfig(hidden=(8,)),
    "spirals": ModelConfig(hidden=(16,)),
    "mnist": ModelConfig(hidden=(32,)),
    "fashion_mnist": ModelConfig(hidden=(32,)),
}
STUDENT_TRAINING = {
    "digits": TrainConfig(epochs=30, batch_size=64, lr=1e-2),
    "moons": TrainConfig(epochs=30, batch_size=64, lr=1e-2),
    "spirals": TrainConfig(epochs=60, batch_size=64, lr=1e-2),
    "mnist": TrainConfig(epochs=3, batch_size=128, lr=3e-3),
    "fashion_mnist": TrainConfig(epochs=3, batch_size=128, lr=3e-3),
}
# Every dataset: few labels + a transfer set of unlabelled examples, where soft targets pay off
# (measured on digits, docs/results.md); T = 4 and α = 0.9 as in the paper's MNIST runs.
KD_DEFAULT = KDConfig(temperature=4.0, alpha=0.9, labelled_fraction=0.1)


def uploaded_defaults(n_rows: int) -> dict[str, object]:
    """Teacher and student settings for an uploaded dataset of `n_rows` examples (kdcore.userdata).

    The teacher is a regularized MLP, the student a small one; the schedules shrink as the data
    grows, so that a default teacher trains in well under a minute on two CPU cores (about 2 000
    batches), and small data still gets enough epochs."""
    n_train = max(1, int(0.6 * n_rows))
    batch = 64 if n_train < 5_000 else 256
    steps_per_epoch = max(1, -(-n_train // batch))
    t_epochs = int(min(60, max(3, 2_000 // steps_per_epoch)))
    s_epochs = int(min(40, max(2, 1_200 // steps_per_epoch)))
    width = 256 if n_train < 20_000 else 512
    return {
        "teacher": ModelConfig(hidden=(width, width), dropout=0.3 if n_train < 5_000 else 0.2),
        "teacher_train": TrainConfig(epochs=t_epochs, batch_size=batch, lr=3e-3),
        "student": ModelConfig(hidden=(16,)),
        "student_train": TrainConfig(epochs=s_epochs, batch_size=batch, lr=1e-2 if n_train < 5_000 else 3e-3),
    }


def _uploaded(dataset: str) -> dict[str, object]:
    from kdcore import userdata
    if not userdata.is_user_dataset(dataset):
        raise KeyError(f"no defaults for dataset {dataset!r}")
    meta = userdata.read_meta(userdata.fingerprint_of(dataset))
    return uploaded_defaults(int(meta["n_rows"]))


def default_teacher_spec(dataset: str, data_seed: int = 0, seed: int = 0) -> TeacherSpec:
    if dataset not in TEACHER_MODELS:
        d = _uploaded(dataset)
        return TeacherSpec(dataset, data_seed, d["teacher"], d["teacher_train"], seed)
    return TeacherSpec(dataset, data_seed, TEACHER_MODELS[dataset], TEACHER_TRAINING[dataset], seed)


def default_student(dataset: str) -> tuple[ModelConfig, TrainConfig]:
    if dataset not in STUDENT_MODELS:
        d = _uploaded(dataset)
        return d["student"], d["student_train"]
    return STUDENT_MODELS[dataset], STUDENT_TRAINING[dataset]


def default_kd(dataset: str) -> KDConfig:
    """The distillation settings of every dataset (one entry: no dataset has measured better ones)."""
    return KD_DEFAULT


@dataclass(frozen=True)
class DistillPreset:
    """Settings of a page's student widgets, offered as one button."""
    name: str            # the button's label
    dataset: str         # the dataset it was measured on (the button shows only there)
    width: int           # student hidden width
    depth: int           # student hidden layers
    epochs: int          # student training epochs
    temperature: float   # T of the soft targets
    alpha: float         # weight of the soft term
    fraction: float      # labelled share of the transfer set
    omitted: int | None = None   # a class left out of the transfer set (the Transfer sets page's experiment)
    note: str = ""       # what it shows, with the measurement behind it (docs/results.md)


# Where soft targets at T > 1 beat both the labels-only student and the teacher's-hard-labels
# control: the transfer set has no 3 at all, so neither control ever sees a 3 as a target, while
# the soft targets of other digits still say "a bit like a 3" (Hinton et al. 2015, section 3).
# Measured over 5 seeds by `python -m bench.dark_knowledge` (docs/results.md); on the full digits
# transfer set no setting tried beat the hard-label control (the same document).
DARK_KNOWLEDGE = DistillPreset(
    "Dark knowledge", "digits", width=64, depth=1, epochs=30, temperature=8.0, alpha=0.9, fraction=1.0, omitted=3,
    note="digits without any 3 in the transfer set, MLP 64, T = 8: over 5 seeds the distilled student beats "
         "both the labels-only student and the teacher's-hard-labels control (about +4 points overall, "
         "every seed; ~47 % of the test 3s right against 0 % for both controls, before any bias fix).")

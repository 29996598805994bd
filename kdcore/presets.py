"""Default settings per dataset, in one place: the app, the docs and the benchmarks use these.

The digits defaults were chosen by measurement (docs/results.md, made by
`python -m bench.results_digits`): they are the settings where distillation
really helps, not the first ones that came to mind.
"""

from __future__ import annotations

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


def default_teacher_spec(dataset: str, data_seed: int = 0, seed: int = 0) -> TeacherSpec:
    return TeacherSpec(dataset, data_seed, TEACHER_MODELS[dataset], TEACHER_TRAINING[dataset], seed)


def default_student(dataset: str) -> tuple[ModelConfig, TrainConfig]:
    return STUDENT_MODELS[dataset], STUDENT_TRAINING[dataset]


def default_kd(dataset: str) -> KDConfig:
    """The distillation settings of every dataset (one entry: no dataset has measured better ones)."""
    return KD_DEFAULT

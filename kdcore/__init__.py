"""kdcore: the engine of Distillation Lab.

A plain PyTorch library (no streamlit) for knowledge distillation and model
compression on small datasets: data loading, models, losses, a callback-driven
trainer, a disk cache of trained teachers, metrics; its figures are in `kdcore.viz`.
Pages of the app read widgets, call kdcore and draw; a notebook or a script can
use it just the same.
"""

from kdcore.data import Dataset, DatasetUnavailable, DATASETS, load_dataset
from kdcore.models import ModelConfig, build_model, param_count, model_bytes
from kdcore.losses import soften, kd_loss, soft_target_loss, logit_matching_loss, dkd_loss, hint_loss
from kdcore.train import TrainConfig, EpochLog, History, fit, predict_logits
from kdcore.metrics import evaluate, accuracy, agreement, mean_kl, confusion_matrix
from kdcore.teachers import TeacherCache, TrainedTeacher, default_cache_dir
from kdcore.distill import KDConfig, DistillResult, distill_and_compare

__all__ = [
    "Dataset", "DatasetUnavailable", "DATASETS", "load_dataset",
    "ModelConfig", "build_model", "param_count", "model_bytes",
    "soften", "kd_loss", "soft_target_loss", "logit_matching_loss", "dkd_loss", "hint_loss",
    "TrainConfig", "EpochLog", "History", "fit", "predict_logits",
    "evaluate", "accuracy", "agreement", "mean_kl", "confusion_matrix",
    "TeacherCache", "TrainedTeacher", "default_cache_dir",
    "KDConfig", "DistillResult", "distill_and_compare",
]

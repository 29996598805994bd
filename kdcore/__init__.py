"""kdcore: the engine of Distillation Lab (plain PyTorch, no Streamlit). Where things are:

Data and models
    data          built-in datasets (digits, moons, spirals, MNIST, Fashion-MNIST), splits
    models        MLP / CNN configs, parameter counts, sizes in bytes
    presets       the default teacher, student and KD settings per dataset (chosen by measurement)
    records       ModelRecord and the records of every experiment's models (what Prune and Trade-offs pick)
    paths         where caches live (teachers, runs, uploaded datasets)
    userdata, userteachers   uploaded datasets; scikit-learn ensembles and uploaded outputs as teachers
Training and distillation
    losses        kd_loss (α·T²·KL + (1−α)·CE), soften, logit matching, DKD, hints (formula + paper each)
    train         TrainConfig, the callback-driven Trainer, fit, History
    teachers      TeacherSpec, train_teacher, the disk cache of trained teachers
    distill       KDConfig, DistillRun (distilled, scratch and hard-label students), the verdict sentence
    metrics       accuracy, agreement, KL, confusion
    device        the CPU, or a CUDA GPU when torch sees one (Hinton MNIST's preset)
Experiments, one module per page that runs them
    temperature   soft targets against T, dark knowledge, the gradient story       (Temperature)
    sweep         the T × α (× width × seed) grid trained as one batched model     (Sweep)
    ensemble      ensembles and their distilled students                           (Ensembles)
    specialists   generalist + specialists with a dustbin class                    (Specialists)
    transfer      few labels, the omitted class, soft loss vs logit matching        (Transfer sets)
    hinton        the paper's MNIST preset                                         (Hinton MNIST)
    sequences, seqdistill, seqgroups, chunker   recurrent teachers and students    (Sequences)
    loss_families KD vs DKD vs hints vs a class-distance teacher                   (Losses)
Compression (Prune and Trade-offs pages)
    pruning       OBD saliencies (exact, Gauss–Newton, Hutchinson), magnitude, random; masks
    quantize      fake quantization, honest sizes, QAT by distillation
    tradeoffs     the Pareto front and the words for stakeholders; latency (timings),
                  sizecurve (students of several widths), bitwidths (PTQ vs QAT),
                  pipeline (distill → prune → quantize), weightless (Bloomier filters),
                  binary (XNOR MLPs), lowrank
Runs: every long experiment as a run that outlives the page
    runs          RunSpec (kind + JSON config), RunKind, drive(); the kinds in runkinds*.py
    jobs, store, codec, ray_executor   the job runner, the SQLite run store, results ↔ files, Ray
Figures, lessons, checks of what users type
    viz           every figure, one module per page (viz.sweep, viz.temperature, ...) and one style;
                  viz.report: self-contained HTML reports of runs
    lessons       the Lessons page's ready-made links
    inputs, text  numbers typed as text read with clear messages; plurals, durations, signed points

A page's logic is in the module named above for its page; its figures in `kdcore.viz.<page>`; its
per-user state in `ui/state.py`.
"""

from kdcore.data import Dataset, DatasetUnavailable, DATASETS, load_dataset
from kdcore.models import ModelConfig, build_model, param_count, model_bytes
from kdcore.losses import soften, kd_loss, soft_target_loss, logit_matching_loss, dkd_loss, hint_loss
from kdcore.train import TrainConfig, EpochLog, History, fit, predict_logits
from kdcore.metrics import evaluate, accuracy, agreement, mean_kl, confusion_matrix
from kdcore.paths import default_cache_dir
from kdcore.teachers import TeacherCache, TrainedTeacher
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

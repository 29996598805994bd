"""Home: the story of distillation in a few sentences, and one picture."""

import streamlit as st
import torch

from kdcore import viz
from kdcore.losses import soften
from ui import present

st.title("⚗️ Distillation Lab")
st.markdown(
    """
A big network (or an ensemble) learns a task well but is too **slow and large** to ship.
*Knowledge distillation* (Hinton, Vinyals & Dean, 2015) trains a small **student** to copy the big
**teacher**: not only its answer, but its whole probability distribution, softened by a
**temperature** T > 1. Those soft targets say that a "2" looks a bit like a "3" and nothing like a
"7"; that *dark knowledge* is information the hard labels never give, and it lets the student learn
more from fewer examples.

The student is trained on `α·T²·KL(p_T ‖ q_T) + (1−α)·CE(y, q_1)`: α weighs the teacher's soft
targets against the true labels, and T² keeps the soft gradients' scale as T changes.
"""
)

# one picture: what a temperature does to a distribution (illustrative logits of a "2")
logits = torch.tensor([1.0, 2.0, 9.0, 5.5, 0.5, 1.5, 0.0, 4.0, 3.0, 0.5])
classes = [str(i) for i in range(10)]
present.chart(viz.home.soft_targets_at(classes, [(T, soften(logits, T).numpy()) for T in (1.0, 4.0)],
                                         "Soft targets of a teacher that sees a “2” (illustrative logits)"),
                width="stretch")
st.caption("At T = 1 the teacher is almost one-hot on “2”. At T = 4 its belief that the digit "
           "resembles a “3” and a “7” becomes visible: that is what the student learns from.")

st.markdown(
    """
**Where to go**

| page | what you see |
|---|---|
| **Lessons** | ready-made links for a class: each opens a page with its settings and says what to press and what to look for |
| **Distill** | a teacher, then a student on its soft targets *and* the same student on labels alone, side by side: what distillation buys, in points of accuracy and in bytes |
| **Temperature** | what T does to one example's soft targets, the dark knowledge across classes, and why the loss is scaled by T² |
| **Sweep** | the whole T × α landscape at once: 25 students trained as one batched model |
| **Ensembles** / **Specialists** | compressing an ensemble into one student; specialists for classes that are easily confused |
| **Transfer sets** | few labels, a class left out of the transfer set, soft targets vs logit matching |
| **Hinton MNIST** | the paper's MNIST experiment (784-1200-1200-10 teacher, 784-800-800-10 student, T = 20) |
| **Sequences** | a recurrent teacher and small students distilled at every step (user sessions, the Reber grammar), per-campaign models into one, and the 1991 chunker where distillation began |
| **Losses** | labels only, KD, decoupled KD, FitNets hints and a class-distance teacher on one student, mean ± std over seeds: is anything better than plain KD? |
| **Prune** | Optimal Brain Damage: saliency ½·h_ii·θ² from the Hessian's diagonal, against magnitude and random pruning |
| **Trade-offs** | every model of the session, accuracy against size and latency, quantization to 8/4/2/1 bits, and more compression: Weightless (Bloomier filters), binary MLPs with an XNOR forward, low rank |
| **Your data** | upload a table, an NPZ or a ZIP of image folders; bring a scikit-learn ensemble or your own model's outputs as the teacher |
| **Runs** | every run of your workspace: compare, rename, download a model, a report of a run or a comparison |

Choose a dataset and a seed in the sidebar. *digits* is built in and runs anywhere in seconds.
"""
)

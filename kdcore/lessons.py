"""Ready-made lessons: each opens one page with its settings (a link) and says what to press and what
to look for. The Lessons page (pages/lessons.py) lists them; tests/test_lessons.py opens each link
and checks that the page shows exactly these settings.

`params` are query parameters as the address bar writes them: a widget's key and its value's text
(a choice's label, e.g. "2 %"); settings left out keep their defaults. Every lesson runs on the
built-in digits dataset (seed 0), so it works offline and gives the same numbers each time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Lesson:
    slug: str                 # short id, for the lesson list and tests
    title: str
    paragraph: str            # what the lesson shows, in a few sentences
    page: str                 # the page's url path (as in app.py's navigation)
    press: str                # what to press (or move) once the page is open
    look_for: str             # what to look for on the page
    params: dict[str, str | list[str]] = field(default_factory=dict)   # the page's settings in the link


LESSONS: list[Lesson] = [
    Lesson("soft-targets", "Soft targets and T",
           "A teacher's output at T = 1 is almost a one-hot label. Softened at a higher temperature, its "
           "wrong classes come up: how much this 3 resembles a 5 or an 8 is information the label never "
           "gives, the dark knowledge a student learns from.",
           "temperature",
           "Move the **Temperature T** slider from 1 to 20 and back; pick other examples by rank.",
           "Section 1: the wrong classes' bars at the slider's T (dark) rise far above those at T = 1 (light; the log scale shows "
           "them) and the distribution flattens; section 2: the entropy climbs with T.",
           {"temperature_T": "8", "temperature_rank": "2"}),
    Lesson("t-squared", "Why the soft loss is scaled by T²",
           "The gradient of the soft cross-entropy shrinks like 1/T² as T grows. Without the factor T², "
           "raising T would silently switch the soft term off next to the labels' cross-entropy; with it, "
           "T and α can be tuned separately. At high T the soft gradient becomes logit matching.",
           "temperature",
           "Scroll to **4 · Gradients**; move T to 20.",
           "The gradient-norm chart: without T² the soft gradient falls like 1/T², with T² it stays level; "
           "the cosine with logit matching goes to 1.",
           {"temperature_T": "20"}),
    Lesson("few-labels", "Few labels",
           "With 2 % of the labels, a student trained on labels alone sees a few dozen examples. The "
           "distilled one gets the teacher's soft targets on every training example (an unlabelled "
           "transfer set), and the gap between the two is at its largest.",
           "distill",
           "Press **Distill** (a few seconds on digits).",
           "The distilled student's accuracy above the scratch one's (the delta under its number), and "
           "the teacher's-hard-labels control between them: the rest is what the soft targets add.",
           {"distill_fraction": "2 %", "distill_epochs": "60"}),
    Lesson("omitted-class", "The omitted class",
           "Every 5 is removed from the transfer set. The distilled student still learns about 5s from the "
           "soft targets of other digits that look a bit like a 5, and raising its 5's bias recovers most "
           "of them: Hinton et al.'s omitted-class experiment (with a 3 there).",
           "transfer_set",
           "In **2 · An omitted class**, press **Train without it**; then move the bias slider, or choose auto.",
           "The distilled student's accuracy on the 5s at bias 0 against the scratch student's (never "
           "predicts a 5), then the 5s recovered as the bias rises.",
           {"to_cls": "5"}),
    Lesson("ensembles", "Ensembles into one student",
           "Five models trained separately make fewer errors together than any one of them. Distilling the "
           "ensemble's averaged soft targets into one student of the teacher's size keeps much of that gain "
           "at a fifth of the cost.",
           "ensembles",
           "Press **Train ensemble**, then **Distill from the ensemble**.",
           "The ensemble's accuracy above its best member; the student distilled from it against the "
           "same student trained on labels alone.",
           {"ens_members": "5", "ens_method": "geometric mean (renormalized)"}),
    Lesson("obd", "Optimal Brain Damage against magnitude",
           "Deleting the smallest weights is not the same as deleting those whose loss increase is smallest. "
           "Optimal Brain Damage estimates that increase from the Hessian's diagonal (here exact); at high "
           "sparsity it keeps more accuracy than magnitude pruning.",
           "prune",
           "Press **Compute saliencies** (the teacher is pruned).",
           "Accuracy against sparsity: OBD's curve stays above magnitude's and random's past 80 %; the "
           "predicted against the actual loss increase.",
           {"prune_method": "exact Hessian diagonal (small nets)", "prune_levels": ["80 %", "90 %", "95 %", "98 %"]}),
    Lesson("binary", "1-bit students",
           "A fully binary MLP keeps one bit per weight and activation: 32 times smaller than float32, and "
           "computed with XNOR and popcount. Trained with the teacher's soft targets it loses less accuracy "
           "than trained on labels alone.",
           "tradeoffs",
           "Open **More compression**, then press **Train binary MLPs**.",
           "The binary students' accuracy with and without KD, their size in bytes, and the XNOR "
           "against float latency; where they sit on the frontier.",
           {"tradeoffs_bin_width": "128", "tradeoffs_bin_epochs": "30"}),
    Lesson("frontier", "The accuracy-vs-size frontier",
           "Every model of the session on one chart, accuracy against honest size, with the Pareto frontier: "
           "the models no other model beats on both. A size curve of distilled students fills it in.",
           "tradeoffs",
           "Press **Run the size curve**, then look at section 1 again (its students are added).",
           "Which models lie on the frontier, by size and by latency at batch 1 (the link's axis); where "
           "the distilled students of each width fall against the teacher and the quantized models.",
           {"tradeoffs_axis": "latency, batch 1", "tradeoffs_sizes_epochs": "40"}),
]

BY_SLUG = {lesson.slug: lesson for lesson in LESSONS}

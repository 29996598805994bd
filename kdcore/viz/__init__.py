"""kdcore.viz: every figure of the lab, in one style. Data in, `plotly.graph_objects.Figure` out.

One module per page (the figures a page draws live in the module of its name), plus:
- `style`: colours per role, the template, title/legend/margin placement (`layout`, `figure`);
- `report`: a run's or a comparison's self-contained HTML report (plotly.js embedded once, PNG
  export at presentation size from each chart); `style.for_projector` is presentation mode's copy;
- `common`: figures several pages share: training curves (stored and live), confusion matrices,
  2-D decision regions, mean ± std bars.

Per page: `home`, `temperature`, `sweep`, `ensembles`, `specialists`, `transfer`, `hinton`,
`sequences`, `pruning` (the Prune page), `tradeoffs` (Trade-offs, low rank included). No other
kdcore module imports plotly: the engine returns data, the pages hand it to these builders.
"""

from kdcore.viz import (common, ensembles, hinton, home, pruning, sequences, specialists, style, sweep,
                        temperature, tradeoffs, transfer)

__all__ = ["common", "ensembles", "hinton", "home", "pruning", "sequences", "specialists", "style", "sweep",
           "temperature", "tradeoffs", "transfer"]

"""Product-line optimisation under cost tables and business rules.

Candidates are every allowed configuration (all attributes but price, after
prohibitions and ``must_exclude``) at every price of a grid (default: every
2,000 yuan across the price attribute's levels). A line is ``K`` distinct
configurations, each at one price.

How the candidate space is kept small:

* one MNL (``method="exact"``): lines are never enumerated. For Dinkelbach's
  parameter ``lambda`` each configuration only needs its best price
  ``argmax_g (m_g - lambda) e_g``, so a step costs one pass over the
  configuration x price array and a top-K selection; must-include coverage
  only looks at the top K of each coverage class. Fixed costs are handled by
  enumerating which fixed-cost levels the line may use (pruned by an upper
  bound), so the optimum is exact and ``gap = 0``.
* individual betas or first choice (``"greedy"``): greedy add + 1-swap local
  search scores all candidates at once; when people x candidates exceeds 20
  million cells the candidates are shortlisted by their single-product value
  (plus the best ones for each must-include level). The reported ``bound`` is
  each person's own optimum (exact per person) summed, minus the least fixed
  cost any line must pay, so ``gap`` is a proven optimality gap.
"""

from ._candidates import default_price_grid
from ._line import LineSolution, line_objective, optimize_line

__all__ = ["LineSolution", "default_price_grid", "line_objective", "optimize_line"]

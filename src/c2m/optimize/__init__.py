"""Product-line optimisation under cost tables and business rules.

Candidates are every allowed configuration (all attributes but price, after
prohibitions and ``must_exclude``) at every price of a grid (default: every
2,000 yuan across the price attribute's levels). A line is ``K`` distinct
configurations, each at one price.

How the candidate space is kept small and what is proven:

* one MNL, logit rule (``method="exact"``, the default for an MNL): lines are
  never enumerated. For Dinkelbach's parameter ``lambda`` each configuration
  only needs its best price ``argmax_g (m_g - lambda) e_g`` (so the ~97k
  configuration x price pairs of the default project collapse to one value per
  configuration per step) and the line is the top ``K`` configurations;
  must-include coverage only looks at the top ``K`` of each coverage class.
  Fixed costs are handled by enumerating which fixed-cost levels the line may
  use, pruned by ``ratio_max - charge(U)`` (for share/revenue under a budget,
  only maximal level sets). The optimum is exact and ``gap = 0``.
* one MNL with ``min_share_per_variant`` (or more than 14 fixed-cost levels): an
  exact MILP (Charnes-Cooper linearisation, HiGHS via ``scipy.optimize.milp``)
  over the candidates that can reach the share floor alone; HiGHS' dual bound
  is reported if the time limit stops it (method ``"milp"``).
* individual betas or first choice (``"greedy"``): greedy add + 1-swap local
  search + ``restarts`` random kicks, scoring all candidates at once; when
  people x candidates exceeds 20 million cells the candidates are shortlisted
  by their single-product value (plus the best ones for each must-include
  level). The ``bound`` is the smaller of (a) the sum over the ``K`` best
  configurations of their value when sold alone (a product's share in a line
  never exceeds its share alone) and (b) the weighted sum of each person's own
  optimal line (exact per person), both minus the least fixed cost any line
  pays; ``gap`` is therefore a proven optimality gap (often loose).
"""

from ._candidates import default_price_grid
from ._line import LineSolution, line_objective, optimize_line
from ._pareto import non_dominated, pareto_front

__all__ = ["LineSolution", "default_price_grid", "line_objective", "non_dominated", "optimize_line", "pareto_front"]

"""Embedded default project and the deterministic synthetic market.

``generate_market(project, n_persons, seed)`` draws a population of the
retailer's customers in the project's cities, their hidden "true" preferences,
the retailer's stores and a year (2025) of behaviour events. Everything comes
from ``numpy.random.SeedSequence(seed)`` (separate streams for persons,
preferences, stores and events), so the same seed gives the same market, and
the same files byte for byte.

Population (one row per person)
    city ~ ``market_size``; age band (18-24 .15, 25-34 .33, 35-44 .26, 45-54 .16,
    55+ .10; slightly younger in tier 1); income band from a latent normal
    shifted up in tier-1 cities and for 35-54, cut into low/middle/high (about
    28/48/24 %); ``owns_car`` logit on age, income, tier (plate quotas lower it in
    tier 1; about 46 %); ``daily_km`` lognormal (sigma 0.6, median about 35 km,
    longer for car owners and tier-3+ cities); ``home_charging`` logit, about
    50 % overall and about 33 % in tier-1 apartment cities, higher for car
    owners and high incomes; ``app_user`` about 85 %, less for older people.

True preferences (``truth``; coefficients on the project's ``FeatureCoder`` features)
    A latent-class model with normal heterogeneity. Class membership is a
    multinomial logit on traits, four classes: 0 *budget* (low income, 45+),
    1 *trend* (18-34, tier 1), 2 *long distance* (high ``daily_km``, car
    owners), 3 *swap convenience* (no home charging, tier 1). Each person's
    utility of every level of every categorical attribute is
    ``mean(level | class, traits) + N(0, 0.45^2)``, then dummy-coded against
    the first level. Means, by level/role:

    - style/colour: sporty +0.1, pink -0.7, orange -0.45 ... with +0.3..1.1 for
      the trend class and the 18-24s, less for 45+;
    - ordered attributes (the smart pack): ``slope * sqrt(level index)``, slope
      0.55 (+0.5 trend class, +0.15 for 18-24, -0.2 for 45+, +0.1 per income step);
    - battery role: ``w * (range_km - range_0) / 100`` with ``w`` 0.35 (+0.5
      long-distance class, +0.25 per standard deviation of log daily km), +0.1 NCM;
    - energy mode: swap +0.35 / both +0.55, +0.9 / +0.7 without home charging,
      +1.1 / +0.8 in the swap class (about 87 % prefer swap to plug-in);
    - ownership role, rented battery: -2.0 (the monthly fee), +0.6 without home
      charging, +1.1 in the swap class; capped plan a further
      ``-0.6 * max(km_z + 0.3, 0)`` and -1.0 in the long-distance class;
    - sunroof yes +0.3 (+0.2 per income step); unnamed levels: a fixed N(0, 0.35);
    - price role: ``-exp(log(4.5 / price span) + shifts + N(0, 0.35^2))``
      (negative for everyone; shifts +0.2 budget, -0.15 trend, +0.25 low income,
      -0.3 high income, +0.1 for 45+); other numeric attributes: positive;
    - ``none``: the person's utility of an average product (mean over levels,
      mid price) + 2.6 + 0.3 car owner + 0.3 45+ - 0.25 tier 1 - 0.3 swap class
      + N(0, 0.8^2).

    With the default project the five competitors plus None leave None about
    50 %; adding a swap car with a rented 52 kWh pack at 49,900 yuan gives it
    about 24 % and None about 37 %.

Events
    Each person gets Poisson(``events_per_person`` x activity) events (activity:
    app users x4, younger more, lognormal spread). Car owners make
    ``service_visit`` events (12 %, else 2 %) at their home store (80 %) or another
    store of their city; the rest are view/search/cart/order (66/22/9/3 %) of
    products whose levels are drawn by ``softmax(sharpness x true part-worths)``
    (people look at what they like; carts and orders more sharply), one level for
    a search; ``price`` is drawn the same way from the price levels, +-7 %.
    Timestamps over 2025 with a weekly cycle, a Spring-Festival dip and the
    618 and Double-11 sales peaks; evening hours for browsing, store hours for
    visits.

Survey
    ``sample_respondents`` samples app users with weights skewed young, tier-1
    and richer; ``simulate_responses`` answers a design by utility maximisation.
"""

from ._default import default_project, default_project_path, default_project_text
from ._market import SCHEMA_VERSION, Market, generate_market, read_market
from ._preferences import SEGMENTS
from ._survey import response_propensity, sample_respondents, simulate_responses

__all__ = [
    "SCHEMA_VERSION",
    "SEGMENTS",
    "Market",
    "default_project",
    "default_project_path",
    "default_project_text",
    "generate_market",
    "read_market",
    "response_propensity",
    "sample_respondents",
    "simulate_responses",
]

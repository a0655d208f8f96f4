"""Choice models: data layout, multinomial logit, WTP, elasticities, persistence.

Example::

    data = ChoiceData.from_long(df, features=["price", "range"], id_col="id", task_col="task")
    m = MultinomialLogit(cluster="person").fit(data)
    print(m.summary_text())
"""

from c2m.choice._data import ChoiceData
from c2m.choice._draws import make_draws
from c2m.choice._hb import HierarchicalBayesLogit
from c2m.choice._io import load_model, register_model, save_model
from c2m.choice._latent_class import LatentClassLogit, select_n_classes
from c2m.choice._mixed import MixedLogit
from c2m.choice._mnl import MultinomialLogit

__all__ = [
    "ChoiceData",
    "HierarchicalBayesLogit",
    "LatentClassLogit",
    "MixedLogit",
    "MultinomialLogit",
    "load_model",
    "make_draws",
    "register_model",
    "save_model",
    "select_n_classes",
]

"""Named define-by-run Optuna search spaces: ``space(trial, base, *, budget=None) -> fgmodel.config.RunConfig``.

``get(name)`` returns a space, ``config_from_params`` maps a trial's flat params back to
the config, ``paper_rows`` gives the paper's Table 1 rows as params for
``study.enqueue_trial``. Register a new space with ``@register(name, paper_rows=...)``
in a module imported below.
"""

from spaces import default, paper  # noqa: F401  (registers the spaces)
from spaces._registry import Space, config_from_params, get, names, paper_rows, register

__all__ = ["Space", "config_from_params", "get", "names", "paper_rows", "register"]

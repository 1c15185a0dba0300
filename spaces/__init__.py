"""Named define-by-run Optuna search spaces: ``def space(trial) -> fgmodel.config.RunConfig``."""

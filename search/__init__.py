"""The search: Ray Tune schedules trials, Optuna proposes and stores them."""

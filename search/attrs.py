"""The names of the user attrs a search writes on its Optuna trials and study.

The searcher writes them, the report, export, dashboard and resume read them back, and
optuna-dashboard shows them as they are; one spelling here keeps writer and readers in
step. Reasons of trials the driver cut short live here too: they decide what a resume
counts and runs again (`search.trials`).
"""

from __future__ import annotations

# -- trial attrs ------------------------------------------------------------------------
CONFIG = "config"  # the RunConfig the trial trains with, as a dict (exported unchanged)
GFLOPS = "gflops"  # measured in the driver before the trial runs
PARAMS = "params"  # model parameters, same measurement
OVER_BUDGET = "over_budget"  # pruned before training
CURVE = "curve"  # validation top-1 per finished epoch
EPOCHS_RUN = "epochs_run"
TRAIN_SECONDS = "train_seconds"
IMAGES_PER_SEC = "images_per_sec"
DATA_WAIT = "data_wait"  # per finished epoch: the share of it spent waiting for the data loaders
NODE_ID = "node_id"  # the Ray node the trial ran on
REASON = "reason"  # why the trial ended in its state, one line
ERROR = "error"  # the exception's line of a FAIL trial
PAPER_ROW = "paper_row"  # the Table 1 row an enqueued trial reproduces
RETRY_OF = "retry_of"  # a re-queued trial's original number
PHASE = "phase"  # where its compute counts in the plan: "paper rows" or "searched trials" (search.plan)

# -- study attrs ------------------------------------------------------------------------
BASELINE_GFLOPS = "baseline_gflops"
BASE_CONFIG = "base_config"  # the config every trial starts from, as a dict
PRETRAINED = "pretrained"  # the weights' effective source
SPEC = "spec"  # the study spec, storage left out
TRAINED_EPOCHS = "trained_epochs"  # what a COMPLETE trial trains (the schedule up to its dead tail)
SETUP_COMPLETE = "setup_complete"  # written last by study.complete_setup; missing: --resume redoes the setup

# -- reasons of trials the driver cut short (not the search) ------------------------------
# They don't count toward the requested number and are run again on --resume.
DRIVER_DIED = "driver died"
INTERRUPTED = "interrupted"
CUT_SHORT = (DRIVER_DIED, INTERRUPTED)
# A proposal whose config could not be built or measured: never trained, never counted.
CONFIG_ERROR = "config error"


# -- search.confirm: its runs are trials of the study "<name>:confirm" ---------------------
CONFIRMS = "confirms"  # the search trial a run re-trains
SEED = "seed"  # the run's optim.seed
ROLE = "role"  # why that trial is confirmed: front, next best, baseline, best paper row
VAL_TOP1 = "val_top1"  # the run's last-epoch validation top-1 (also its first objective)
VAL_HITS = "val_hits"  # its last epoch's top-1 hit per validation image (fgmodel.stats.pack_hits)
STATUS = "status"  # "non_finite": the loss diverged, final for that seed
CONFIRMS_STUDY = "confirms_study"  # study attr of the confirm study: the search study's name
DESIGN = "design"  # study attr of the confirm study: its last run's {top, seeds, race, seed, level, futility}
VAL_IMAGES = "val_images"  # study attr: images in the validation split (n of the binomial standard error)

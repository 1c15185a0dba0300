"""The study's reports, written into its directory: pareto.html, trials.csv, pareto.csv, and a console table.

    python -m search.report --study studies/foodx

`search.run` and `search.confirm` write them when they finish; this command writes them
at any time, also while the search runs, and reads the confirm study when there is one.
The frames and tables are `search.report_tables`, the plot `search.report_figure`; this
module computes the front and the confirmed means once and writes each file whole.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna

from fgmodel._io import atomic_path
from fgmodel.cli import run_main
from search import pareto
from search.confirmed import summarize
from search.ledger import ledger
from search.report_figure import pareto_figure
from search.report_tables import console_table, pareto_frame, trials_frame
from search.studydir import STUDY_ERRORS, add_study_arguments, load_confirm_study, load_study

HTML_FILE, TRIALS_FILE, PARETO_FILE = "pareto.html", "trials.csv", "pareto.csv"


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    trials_csv: Path
    pareto_csv: Path
    table: str  # the console table of the front (or why there is none)
    ledger: str = ""  # the compute per phase against the plan (search.ledger)


def write_reports(study: optuna.Study, study_dir: str | Path, confirm: optuna.Study | None = None) -> ReportPaths:
    """Write pareto.html, trials.csv and pareto.csv into ``study_dir``; works with no COMPLETE trial.

    ``confirm``: the study's ``<name>:confirm`` study (`search.confirm`), when there is one.
    pareto.csv holds the front and every confirmed trial, cheapest first; its ``pick``
    column holds the picks on the confirmed means when there are any.
    """
    study_dir = Path(study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    front = pareto.pareto_front(study)
    confirmed = summarize(study, confirm)
    trials = trials_frame(study, front, confirmed)
    records = confirm.get_trials(deepcopy=False) if confirm is not None else []
    paths = ReportPaths(study_dir / HTML_FILE, study_dir / TRIALS_FILE, study_dir / PARETO_FILE,
                        console_table(study, front, confirmed),
                        ledger(study.get_trials(deepcopy=False), records, study.user_attrs))
    # Through a temporary file each, so a reader (a browser, a second report) never sees half a file.
    with atomic_path(paths.trials_csv) as tmp:
        trials.to_csv(tmp, index=False)
    with atomic_path(paths.pareto_csv) as tmp:
        pareto_frame(trials, front, confirmed).to_csv(tmp, index=False)
    with atomic_path(paths.html) as tmp:  # plotly.js embedded: the file opens offline, as everything here must
        pareto_figure(study, front, confirmed).write_html(tmp, include_plotlyjs=True)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.report", description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--out", help="where to write the reports (default: the study directory)")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def report() -> None:
        study = load_study(args.study, args.storage)
        confirm = load_confirm_study(study, args.study, args.storage)
        paths = write_reports(study, args.out or args.study, confirm)
        print(paths.table)
        print(paths.ledger)
        print(f"wrote {paths.html}, {paths.trials_csv}, {paths.pareto_csv}")

    return run_main(report, errors=STUDY_ERRORS)


if __name__ == "__main__":
    sys.exit(main())

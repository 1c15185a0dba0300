"""Export picks the expected trial and writes YAML that fgmodel.config reads back equal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from hand_made import (
    C,
    F,
    P,
    Row,
    add_runs,
    add_trial,
    confirm_paper_study,
    paper_study,
    ran,
    scra,
    search_study,
    set_design,
)

from fgmodel.config import from_dict, load_yaml
from search import export, studydir
from search.studydir import StudyPointer, default_storage, write_pointer

optuna.logging.set_verbosity(optuna.logging.WARNING)

REPO = Path(__file__).resolve().parents[1]

# Baseline 1.0 GFLOPs, budget +10%: the limit is 1.10. Each trial's config has dropout = number / 20.
# Normalised over the front (trials 0, 1, 2, 4): x = 0, .1, .4, 1; y = 0, .75, .875, 1.
# Trial 1 is farthest above the chord from (0, 0) to (1, 1): the knee. Trial 4: max-acc.
DESIGN = [
    Row(C, 0.50, 1.00),
    Row(C, 0.80, 1.01),
    Row(C, 0.85, 1.04),
    Row(C, 0.84, 1.05),  # dominated by 2
    Row(C, 0.90, 1.10),  # exactly at the limit
    Row(C, 0.99, 1.20),  # over budget
    Row(P, None, 1.30, attrs={"reason": "over budget"}),
    Row(F, attrs={"reason": "raised"}),  # never measured
]


def make_study(design=DESIGN, storage=None, name="export") -> optuna.Study:
    return search_study(1.0, 0.10, design, storage, name)


@pytest.mark.parametrize(("pick", "number"), [("max-acc", 4), ("knee", 1)])
def test_picks_and_yaml_round_trip(tmp_path, pick, number):
    study = make_study()
    out = tmp_path / "sub" / "best.yaml"
    config = export.export(export.choose(study, pick=pick), out)
    expected = from_dict(study.trials[number].user_attrs["config"]).replace(**{"data.eval_on": "test"})
    assert config == expected and config.model.dropout == number / 20
    assert load_yaml(out) == expected and expected.data.eval_on == "test"


def test_explicit_trial_may_be_off_the_front(tmp_path):
    assert export.export(export.choose(make_study(), trial=3), tmp_path / "t.yaml").model.dropout == 0.15


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"trial": 6}, "trial 6 is PRUNED (over budget), not COMPLETE"),
    ({"trial": 7}, "trial 7 is FAIL (raised), not COMPLETE"),
    ({"trial": 99}, "trial 99 does not exist (study 'export' has 8 trials)"),
    ({"pick": "median"}, "unknown pick 'median'"),
])
def test_choose_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        export.choose(make_study(), **kwargs)


def test_no_complete_or_no_feasible_trial():
    with pytest.raises(ValueError, match="has no COMPLETE trials yet"):
        export.choose(make_study(DESIGN[6:]))
    with pytest.raises(ValueError, match="no COMPLETE trial is within the FLOPs budget"):
        export.choose(make_study(DESIGN[5:]))


def _study_dir(tmp_path, design=DESIGN) -> Path:
    storage = default_storage(tmp_path)
    make_study(design, storage=storage, name="cli")
    write_pointer(tmp_path, StudyPointer(storage, "cli"))
    return tmp_path


@pytest.mark.parametrize("argv", [
    ["--trial", "6"], ["--trial", "99"], ["--pick", "knee"],
])
def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, argv):
    study_dir = _study_dir(tmp_path, DESIGN if argv[0] == "--trial" else DESIGN[6:])
    assert export.main(["--study", str(study_dir), *argv, "--out", str(tmp_path / "x.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "x.yaml").exists()


def test_cli_missing_study_dir(tmp_path, capsys):
    assert export.main(["--study", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"error: study directory {tmp_path / 'nope'} does not exist\n"


@pytest.mark.slow
def test_cli_as_a_module(tmp_path):
    study_dir = _study_dir(tmp_path)
    out = tmp_path / "best.yaml"
    run = subprocess.run([sys.executable, "-m", "search.export", "--study", str(study_dir), "--pick", "knee",
                          "--out", str(out)], cwd=REPO, capture_output=True, text=True, check=True)
    assert run.stdout.startswith("picked by knee on single runs (not confirmed): val top-1 80.00% from one run, "
                                 "1.01 GFLOPs (trial 1) -> ")
    assert run.stderr.count("warning: nothing is confirmed, so the pick rests on single runs") == 1
    assert f"python -m fgmodel.train --config {out}" in run.stdout
    assert load_yaml(out).model.dropout == 0.05


def add_confirmation(study, storage):
    """Means: 1 (0.78), 2 (0.86), 4 (0.80): the single-run best (4, 0.90) is dominated by 2 on the means."""
    conf = studydir.open_confirm_study(study, storage)
    set_design(conf, top=3, seeds=3)  # candidates: 4, 2, 1 (the front's top 3; 1 is its knee too)
    for number, gflops, runs in [(1, 1.01, (0.77, 0.78, 0.79)), (2, 1.04, (0.85, 0.86, 0.87)),
                                 (4, 1.10, (0.79, 0.80, 0.81))]:
        add_runs(conf, number, "front", gflops, dict(enumerate(runs, start=1)))
    return conf


@pytest.mark.parametrize("pick", ["max-acc", "knee"])
def test_pick_rests_on_the_confirmed_means(tmp_path, pick):
    storage = optuna.storages.InMemoryStorage()
    study = make_study(storage=storage)
    assert export.choose(study, pick="max-acc").trial.number == 4  # single runs
    out = tmp_path / "best.yaml"
    config = export.export(export.choose(study, pick=pick, confirm=add_confirmation(study, storage)), out)
    assert config.model.dropout == 2 / 20  # trial 2, the best mean
    assert out.read_text().splitlines()[0] == (
        f"# picked by {pick} on confirmed means: mean val top-1 86.00% +- 2.48 (95% t-interval) over 3 seeds, "
        f"1.04 GFLOPs (trial 2)")  # +- 4.303 * 0.01 / sqrt(3)
    assert load_yaml(out) == config


def test_header_of_a_single_run_pick_and_of_a_trial(tmp_path):
    study = make_study()
    study.set_user_attr("val_images", 400)
    export.export(export.choose(study, pick="knee"), tmp_path / "a.yaml")  # 1: 0.80 -> sqrt(.8 * .2 / 400) = 2 pp
    assert (tmp_path / "a.yaml").read_text().splitlines()[0] == (
        "# picked by knee on single runs (not confirmed): val top-1 80.00% +- 2.00 (binomial, 400 validation "
        "images) from one run, 1.01 GFLOPs (trial 1)")
    export.export(export.choose(study, trial=3), tmp_path / "b.yaml")
    assert (tmp_path / "b.yaml").read_text().startswith("# trial 3 chosen by number: val top-1 84.00% +- 1.83")


def test_cli_warns_only_without_confirmation(tmp_path, capsys):
    storage = default_storage(tmp_path)
    study = make_study(storage=storage, name="cli")
    write_pointer(tmp_path, StudyPointer(storage, "cli"))
    argv = ["--study", str(tmp_path), "--pick", "max-acc", "--out", str(tmp_path / "x.yaml")]
    assert export.main(argv) == 0
    assert capsys.readouterr().err.count("warning: ") == 1
    add_confirmation(study, storage)
    assert export.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("picked by max-acc on confirmed means: mean val top-1 86.00%")
    assert load_yaml(tmp_path / "x.yaml").model.dropout == 2 / 20


def test_an_incomplete_or_stale_confirmation_is_refused():
    storage = optuna.storages.InMemoryStorage()
    study = paper_study(storage=storage)
    conf = confirm_paper_study(study, storage)  # complete: 5, 4 and 0 on seeds 1-3
    assert export.choose(study, confirm=conf).trial.number == 4
    set_design(conf, top=2, seeds=4)  # interrupted before seed 4
    incomplete = "the confirmation is incomplete: trials 0, 4, 5 lack runs (3 to train)"
    with pytest.raises(ValueError) as refused:
        export.choose(study, confirm=conf)
    assert str(refused.value) == f"{incomplete}: finish it with search.confirm, or pass --allow-partial to pick " \
                                 f"from what it has"
    partial = export.choose(study, confirm=conf, allow_partial=True)
    assert partial.trial.number == 4
    assert partial.basis.startswith(f"picked by max-acc on confirmed means ({incomplete}):")
    set_design(conf, top=2, seeds=3)
    add_trial(study, ran(0.62, 0.1030, params=scra(1, 1)))  # 11: a resumed search moved the front past 5
    with pytest.raises(ValueError, match=r"^the confirmation is incomplete: trial 11 lacks runs \(3 to train\)"):
        export.choose(study, confirm=conf)


def test_cli_refuses_a_partial_confirmation_unless_allowed(tmp_path, capsys):
    storage = default_storage(tmp_path)
    study = paper_study(storage=storage, name="cli")
    set_design(confirm_paper_study(study, storage), top=2, seeds=4)
    write_pointer(tmp_path, StudyPointer(storage, "cli"))
    argv = ["--study", str(tmp_path), "--out", str(tmp_path / "x.yaml")]
    assert export.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: the confirmation is incomplete: trials 0, 4, 5 lack runs")
    assert export.main([*argv, "--allow-partial"]) == 0
    assert load_yaml(tmp_path / "x.yaml").model.scra_stages == (0,)  # trial 4, the "+ SCRA" row

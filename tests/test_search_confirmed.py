"""The confirmation without Ray, on the hand-made paper-shaped study (tests/hand_made.py): candidates, plan, records."""

from __future__ import annotations

import copy

import optuna
import pytest
from hand_made import (
    PAPER_DESIGN,
    C,
    F,
    P,
    Row,
    add_record,
    add_runs,
    confirm_paper_study,
    paper_study,
    ran,
    scra,
    set_design,
)
from optuna.trial import TrialState

from search import confirm, confirmed, export, pareto, studydir
from search.confirmed import Candidate, Design, Run

optuna.logging.set_verbosity(optuna.logging.WARNING)

# paper_study: the front is 2, 4, 5 (0.50, 0.56, 0.60); 6 is over budget; 10 (0.58) is the best off the front.


def chosen(study, top):
    trials = study.get_trials(deepcopy=False)
    return [(c.number, c.role) for c in confirmed.choose_candidates(trials, pareto.pareto_front(study), top)]


def test_candidates_top_of_front_then_baseline():
    # front by accuracy: 5, 4, 2; the knee and the best paper row (4, "+ SCRA") are already in
    assert chosen(paper_study(), 2) == [(5, "front"), (4, "front, knee, best paper row"), (0, "baseline")]


def test_the_knee_of_the_single_run_front_is_a_candidate():
    # top 1 would confirm only the front's expensive end (5); its knee (4) comes too
    assert chosen(paper_study(), 1) == [(5, "front"), (4, "knee, best paper row"), (0, "baseline")]
    design = list(PAPER_DESIGN)
    design[4] = ran(0.56, 0.1003, params=scra(0, 1))  # the knee is no paper row now
    assert chosen(paper_study(design), 1) == [(5, "front"), (4, "knee"), (0, "baseline"), (2, "best paper row")]


def test_candidates_topped_up_with_next_best_feasible():
    # the front has 3; then feasible COMPLETE by accuracy: 10 (0.58), 3 (0.49), 1 (0.46); 6 is over budget
    assert chosen(paper_study(), 4) == [(5, "front"), (4, "front, knee, best paper row"), (2, "front"),
                                       (10, "next best"), (0, "baseline")]
    assert chosen(paper_study(), 6)[3:] == [(10, "next best"), (3, "next best"), (1, "next best"), (0, "baseline")]
    design = list(PAPER_DESIGN)
    design[0] = ran(0.61, 0.1000, "baseline")  # the baseline on the front: one candidate, both roles
    assert chosen(paper_study(design), 1) == [(0, "front, knee, baseline"), (4, "best paper row")]


def test_best_paper_row_is_added_when_not_among_the_top():
    design = list(PAPER_DESIGN)
    design[4] = ran(0.45, 0.1003, "+ SCRA")  # now off the front and below + L2SP (2, on the front) ...
    design[2] = ran(0.47, 0.1001, "+ L2SP")  # ... which leaves the front too: 3 (0.49, 0.1) dominates it
    assert chosen(paper_study(design), 1) == [(5, "front, knee"), (0, "baseline"), (3, "best paper row")]


def test_baseline_stopped_early_or_retried():
    design = list(PAPER_DESIGN)
    design[0] = Row(P, None, 0.1000, "baseline")  # ASHA stopped it: confirmation trains it fully anyway
    assert chosen(paper_study(design), 1) == [(5, "front"), (4, "knee, best paper row"), (0, "baseline")]
    design[0] = Row(F, None, 0.1000, "baseline")
    design.append(ran(0.41, 0.1000, "baseline"))  # the retry of the failed row (11) is the one to confirm
    assert chosen(paper_study(design), 1) == [(5, "front"), (4, "knee, best paper row"), (11, "baseline")]
    gflops = {c.number: c.gflops for c in confirmed.choose_candidates(paper_study(design).trials, [], 0)}
    assert gflops == {11: 0.1, 4: 0.1003}


def test_seeds_skip_the_search_seed():
    assert confirmed.confirm_seeds(0, 3) == [1, 2, 3]
    assert confirmed.confirm_seeds(7, 2) == [8, 9]


def test_fixed_design_skips_final_records_and_lists_left_running():
    records = optuna.create_study(directions=["maximize", "minimize"])
    add_record(records, 5, 1)  # 0: done
    add_record(records, 5, 2, F, status="non_finite")  # 1: final, a fixed seed diverges again
    add_record(records, 4, 1, F, reason="raised")  # 2: run again
    add_record(records, 4, 2, TrialState.RUNNING)  # 3: a dead process's
    add_record(records, 9, 1)  # 4: not a candidate any more: ignored
    cands = [Candidate(5, "front", 0.1), Candidate(4, "front", 0.1)]
    state = confirmed.progress(Design(seeds=2), cands, records.trials)
    assert state.todo == [Run(4, 1), Run(4, 2)] and not state.rounds
    assert confirmed.left_running(records.trials) == [3]
    assert confirmed.progress(Design(seeds=3), cands, records.trials).todo == [Run(5, 3), Run(4, 1), Run(4, 2),
                                                                                Run(4, 3)]


def test_run_config_changes_the_seed_only_and_keeps_the_trials_split():
    trial = paper_study().trials[5]
    searched = copy.deepcopy(trial.user_attrs["config"])
    assert (searched["optim"]["seed"], searched["data"]["split_seed"]) == (0, None)  # the split follows the seed
    config = confirmed.run_config(trial, seed=2)
    assert trial.user_attrs["config"] == searched  # the search trial's attr is untouched
    assert (config["optim"]["seed"], config["data"]["split_seed"]) == (2, 0)  # split 0 pinned: the trial's own
    config["optim"]["seed"], config["data"]["split_seed"] = 0, None
    assert config == searched and config["model"]["scra_stages"] == [1]


def test_a_trial_searched_on_another_split_is_confirmed_on_it():
    # a spec with config: {data.split_seed: 7} searches on split 7: the confirmation must not move to split 0
    study = paper_study()
    trial = study.trials[5]
    trial.user_attrs["config"]["data"]["split_seed"] = 7
    assert confirmed.split_of(trial.user_attrs["config"]) == 7
    assert [confirmed.run_config(trial, seed)["data"]["split_seed"] for seed in (1, 2, 3)] == [7, 7, 7]
    trial.user_attrs["config"]["data"]["split_seed"] = None
    trial.user_attrs["config"]["optim"]["seed"] = 5  # a search with seed: 5 selected on split 5
    assert [confirmed.run_config(trial, seed)["data"]["split_seed"] for seed in (6, 7)] == [5, 5]


def test_recorder_records_runs_and_a_rerun_skips_them():
    storage = optuna.storages.InMemoryStorage()
    study = paper_study(storage=storage)
    conf = studydir.open_confirm_study(study, storage)
    assert conf.study_name == study.study_name + ":confirm"
    cands = [Candidate(5, "front", 0.103), Candidate(0, "baseline", 0.1, "baseline")]
    configs = {(c.number, s): {"seed": s} for c in cands for s in (1, 2)}
    lines = []
    rec = confirm.Recorder(conf, cands, configs, epochs=2, log=lines.append)
    rec.start("a", Run(5, 1))
    rec.result("a", {"epoch": 1, "val_top1": 0.3, "train_seconds": 1.0})
    rec.result("a", {"epoch": 2, "val_top1": 0.55, "train_seconds": 2.0})
    rec.complete("a")
    rec.start("b", Run(0, 1))
    rec.result("b", {"epoch": 1, "val_top1": 0.2})
    rec.result("b", {"status": "non_finite", "reason": "non-finite loss at epoch 2"})
    rec.complete("b")
    rec.start("c", Run(5, 2))
    rec.result("c", {"error": "RuntimeError: boom"})
    rec.complete("c", errored=True)
    rec.start("d", Run(0, 2))
    rec.result("d", {"epoch": 1, "val_top1": 0.25})
    rec.fail_live("interrupted")

    a, b, c, d = conf.trials
    assert a.state == C and a.values == [0.55, 0.103]
    assert a.user_attrs.items() >= {"confirms": 5, "seed": 1, "role": "front", "curve": [0.3, 0.55], "val_top1": 0.55,
                                 "epochs_run": 2, "gflops": 0.103}.items()
    assert a.user_attrs["config"] == {"seed": 1}
    assert "paper_row" not in a.user_attrs and c.user_attrs["error"] == "RuntimeError: boom"
    assert b.state == F and b.user_attrs["status"] == "non_finite" and b.user_attrs["paper_row"] == "baseline"
    assert (c.state, d.state, d.user_attrs["reason"], d.user_attrs["curve"]) == (F, F, "interrupted", [0.25])
    assert len(lines) == 4 and lines[0] == "confirm trial   5 seed 1: COMPLETE val_top1 0.5500"

    assert confirmed.progress(Design(seeds=2), cands, conf.trials).todo == [Run(5, 2), Run(0, 2)]


def test_left_running_records_are_failed():
    storage = optuna.storages.InMemoryStorage()
    study = paper_study(storage=storage)
    conf = studydir.open_confirm_study(study, storage)
    rec = confirm.Recorder(conf, [Candidate(5, "front", 0.1)], {(5, 1): {}}, epochs=2)
    rec.start("a", Run(5, 1))  # the process dies here
    left = confirmed.left_running(conf.trials)
    assert left == [0]
    confirm.fail_left_running(conf, left)
    assert conf.trials[0].state == F and conf.trials[0].user_attrs["reason"] == "driver died"
    assert studydir.open_confirm_study(study, storage).trials[0].state == F  # the same study, found again by name


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # set_metric_names
def test_confirm_study_has_the_objectives_and_names():
    storage = optuna.storages.InMemoryStorage()
    study = paper_study(storage=storage)
    study.set_metric_names(["val_top1", "gflops"])
    conf = studydir.open_confirm_study(study, storage)
    assert conf.directions == study.directions and conf.metric_names == ["val_top1", "gflops"]
    assert conf.user_attrs["confirms_study"] == study.study_name
    other = optuna.create_study(directions=["maximize", "minimize"], storage=storage)
    assert studydir.open_confirm_study(other, storage, create=False) is None
    assert studydir.open_confirm_study(other, storage).metric_names == ["val_top1", "gflops"]


def test_summarize_means_paired_differences_front_and_picks():
    storage = optuna.storages.InMemoryStorage()
    study = paper_study(storage=storage)
    conf = confirm_paper_study(study, storage)
    add_record(conf, 5, 1, top1=0.99, gflops=0.1030, role="front")  # a second record of (5, 1): ignored
    add_record(conf, 10, 1, F, gflops=0.1040, role="next best")  # no COMPLETE run: not a confirmed point
    add_record(conf, 10, 2, TrialState.RUNNING, gflops=0.1040, role="next best")
    assert confirmed.summarize(study, None) is None
    got = confirmed.summarize(study, conf)
    assert sorted(got.points) == [0, 4, 5] and got.baseline == 0 and got.max_seeds == 3
    p4, p5 = got.points[4], got.points[5]
    assert p5.runs == {1: 0.50, 2: 0.52, 3: 0.54} and p5.top1.mean == pytest.approx(0.52)
    assert p5.top1.se == pytest.approx(0.01154700538) and p5.top1.n == 3  # sd 0.02 / sqrt(3)
    # the block design of 0, 4, 5 x 3 seeds: residuals +-.0067 (0), +-.0033 (4, 5); RSS 1.33e-4 on 4 df, so a
    # difference of means has se sqrt(2 * 3.33e-5 / 3) = 0.0047 (the pair's own paired se: 0.0058)
    assert p4.vs_baseline.mean == pytest.approx(0.05) and p4.vs_baseline.se == pytest.approx(0.0047140452)
    assert (p4.vs_baseline.df, p4.top1.halfwidth()) == (4, pytest.approx(4.302653 * 0.02 / 3 ** 0.5))
    assert p4.role == "front" and p4.gflops == 0.1003 and p4.feasible and got.points[0].paper_row is None
    # means: 0 (0.50, 0.1000), 4 (0.55, 0.1003), 5 (0.52, 0.1030): 4 dominates 5
    assert got.front == [0, 4] and got.picks == {"max-acc": 4, "knee": 4}
    # 4 - 5 = +3 pp, 4 - 0 = +5 pp, each +- 2.776 * 0.47 = 1.31 pp
    assert got.verdict == (
        "Trial 4 (best mean, 55.00%) is ahead of trial 5 (95% t-intervals, seed noise pooled over the configs); "
        "it is above the baseline (trial 4 minus the baseline (trial 0) is +5.00 pp (95% t-interval +3.69 to "
        "+6.31) over 3 seeds; 95% t-intervals, seed noise pooled over the configs).")
    # the confirmation's design (top 2, 3 seeds): 5, 4 and 0, each on seeds 1-3: complete, 9 runs
    assert (got.candidates, got.missing, got.trained, got.fixed_runs) == ([5, 4, 0], [], 9, 9)
    assert got.cost() == "Fixed design: 9 of 9 runs trained (3 candidates x 3 seeds)."


def test_diverged_seeds_count_against_a_config():
    # The repro: the baseline ~0.50 and trial 1 ~0.53 on 3 seeds each; trial 2 one run at 0.60 and
    # two diverged seeds. Picked on means whatever their seed count, trial 2 won on its one good seed.
    storage = optuna.storages.InMemoryStorage()
    study = paper_study([ran(0.50, 0.1, "baseline"), ran(0.55, 0.1), ran(0.58, 0.1)], storage=storage)
    conf = studydir.open_confirm_study(study, storage)
    set_design(conf, top=2, seeds=3)  # candidates: 2 (front, knee), 1 (next best), 0 (baseline)
    add_runs(conf, 0, "baseline", 0.1, {1: 0.49, 2: 0.50, 3: 0.51})
    add_runs(conf, 1, "next best", 0.1, {1: 0.52, 2: 0.53, 3: 0.54})
    add_runs(conf, 2, "front, knee", 0.1, {1: 0.60})
    for seed in (2, 3):
        add_record(conf, 2, seed, F, gflops=0.1, role="front, knee", status="non_finite")
    got = confirmed.summarize(study, conf)
    assert got.points[2].diverged == (2, 3) and not got.points[2].stable and got.points[2].top1.n == 1
    assert got.front == [1] and got.picks == {"max-acc": 1, "knee": 1}
    assert got.missing == [] and got.trained == 9  # a divergence is final: a result, not a gap
    assert got.verdict.endswith(" Trial 2 diverged on seeds 2, 3 (1 of 3 runs finished): unstable, so kept out "
                                "of the front, the picks and the verdict.")
    assert "trial 2" not in got.verdict.split(". Trial 2 diverged")[0].lower()  # nor is it in the comparisons
    assert export.choose(study, pick="max-acc", confirm=conf).trial.number == 1
    assert export.choose(study, pick="knee", confirm=conf).trial.number == 1
    assert "diverged on seeds 2, 3" in export.choose(study, trial=2, confirm=conf).basis  # chosen by number: said


def test_a_candidate_of_several_roles_is_the_baseline_when_one_is():
    assert confirmed.is_baseline("front, baseline") and confirmed.is_baseline("baseline")
    assert not confirmed.is_baseline("front") and not confirmed.is_baseline("best paper row")


def test_settings_arguments_then_spec_block_then_defaults():
    assert confirm.settings(None) == Design(4, 3, False)
    assert confirm.settings({"seeds": 5}) == Design(4, 5)
    assert confirm.settings({"top": 2, "seeds": 5}, top=1) == Design(1, 5)
    assert confirm.settings({"race": True}, seed=7) == Design(race=True, seed=7)
    assert confirm.settings({"race": True}, race=False).seed_list == [1, 2, 3]
    with pytest.raises(ValueError, match="--seeds >= 1"):
        confirm.settings(None, seeds=0)
    assert confirm.settings(None).futility == 0.15 and confirm.settings({"futility": 0.1}, futility=0).futility == 0
    with pytest.raises(ValueError, match="--futility < 1"):
        confirm.settings(None, futility=1.0)


def test_a_race_recorded_before_curtailment_is_recomputed_without_it(tmp_path):
    storage = studydir.default_storage(tmp_path)
    study = paper_study(storage=storage)
    conf = studydir.open_confirm_study(study, storage)
    set_design(conf, 2, 3, race=True)  # the design attr as search.confirm wrote it before "futility" existed
    assert confirmed.design_of(study, conf).futility == 0.0
    conf.set_user_attr("design", {**conf.user_attrs["design"], "futility": 0.1})
    assert confirmed.design_of(study, conf).futility == 0.1
    assert confirmed.design_of(study, None).futility == 0.15  # nothing stored: the spec's block, else the default


def test_cli_errors_are_one_line_exit_2(tmp_path, capsys):
    from search.studydir import StudyPointer, default_storage, write_pointer

    assert confirm.main(["--study", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"error: study directory {tmp_path / 'missing'} does not exist\n"
    storage = default_storage(tmp_path)
    paper_study(storage=storage).set_user_attr("x", 1)  # a study search.run did not write: no spec attr
    write_pointer(tmp_path, StudyPointer(storage, optuna.get_all_study_names(storage)[0]))
    assert confirm.main(["--study", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: study ") and "has no 'spec' attr" in err

"""A table of real learning curves of the demo's space, for `bench/replay.py` to search in simulated time.

    python bench/curves.py                      # build (or finish) bench/data/demo_curves.csv: hours on 2 cores
    python bench/curves.py --configs 8 --out /tmp/tiny.csv   # a tiny table (tests, a first look)

It draws a fixed random sample of the demo study's space (`studies/demo.yaml`: the
fine-tuning demo, atto at 40 px, its budget) with Optuna's RandomSampler (seed 0): the
in-budget proposals only, since a search never trains the others; the paper's six Table 1
rows go first. Each config is fine-tuned ``--seeds`` times (``optim.seed`` 0, 1, ...; the
validation split stays the study's) for the spec's epochs on one core, ``--workers``
processes at a time, and each run is a row: its val top-1 and seconds after every epoch.
Configs go config by config, so a table cut short holds whole configs.

The CSV is appended run by run and flushed: an interrupted build resumes where it stopped
(the config list is redrawn the same; ``--configs`` may grow it). Beside it, a JSON file
records what built it (spec, commit, torch, machine, threads, wall time). Read it back with
`load`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_OUT = Path(__file__).resolve().parent / "data" / "demo_curves.csv"
VERSION = 1
# One row per run; val_top1 and seconds hold one space-separated value per epoch ("nan": diverged there).
FIELDS = ("config", "seed", "paper_row", "gflops", "val_top1", "seconds", "params")


@dataclass(frozen=True)
class TableConfig:
    """One tabulated config: its space params (what Optuna stores), its GFLOPs, and its curves by seed."""

    config: int
    params: dict[str, Any]
    gflops: float
    paper_row: str | None
    curves: dict[int, list[float]]  # seed -> val top-1 after epoch 1, 2, ... (NaN from a diverged epoch on)
    seconds: dict[int, list[float]]  # seed -> each epoch's seconds

    def final(self, seed: int) -> float:
        return self.curves[seed][-1]

    def mean_final(self) -> float:
        """The config's true quality: its last epoch's top-1 averaged over seeds (a diverged run counts as 0)."""
        finals = [0.0 if not math.isfinite(c[-1]) else c[-1] for c in self.curves.values()]
        return sum(finals) / len(finals)


def load(path: str | Path = DEFAULT_OUT) -> tuple[dict[str, Any], list[TableConfig]]:
    """(the build's metadata, the configs with every seed complete), configs in table order."""
    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    epochs = int(meta["epochs"])
    rows: dict[int, dict[str, Any]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            entry = rows.setdefault(int(row["config"]), {
                "params": json.loads(row["params"]), "gflops": float(row["gflops"]),
                "paper_row": row["paper_row"] or None, "curves": {}, "seconds": {},
            })
            top1 = [float(v) for v in row["val_top1"].split()]
            seconds = [float(v) for v in row["seconds"].split()]
            pad = epochs - len(top1)  # a diverged run stops reporting
            entry["curves"][int(row["seed"])] = top1 + [math.nan] * pad
            entry["seconds"][int(row["seed"])] = seconds + [0.0] * pad
    seeds = set(range(int(meta["seeds"])))
    out = [TableConfig(number, e["params"], e["gflops"], e["paper_row"], e["curves"], e["seconds"])
           for number, e in sorted(rows.items()) if set(e["curves"]) >= seeds]
    return meta, out


# -- the build ----------------------------------------------------------------------------------


def draw_configs(spec: Any, base: Any, n: int) -> list[tuple[str | None, dict[str, Any], float]]:
    """(paper row label or None, params, GFLOPs): the paper's rows, then ``n`` in-budget random proposals."""
    import optuna

    import spaces
    from search import budget, preflight

    measure = preflight.measure_fn()
    limit = budget.limit(preflight.baseline_gflops(base, spec.image_size), spec.budget)
    space = spaces.get(spec.space)
    out: list[tuple[str | None, dict[str, Any], float]] = []
    for label, params in spaces.paper_rows(spec.space, base):
        out.append((label, params, measure(spaces.config_from_params(spec.space, params, base))[0]))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    while len(out) < n + len(spaces.paper_rows(spec.space, base)):
        trial = study.ask()
        gflops = measure(space(trial, base, budget=spec.budget))[0]
        if gflops <= limit:
            out.append((None, dict(trial.params), gflops))
    return out


def _run(job: tuple[int, int, dict[str, Any]]) -> tuple[int, int, list[tuple[float, float]]]:
    """Fine-tune one (config, seed) on one core: [(val top-1, seconds)] per epoch."""
    import torch

    from fgmodel.config import from_dict
    from fgmodel.fit import fit

    torch.set_num_threads(1)
    number, seed, config = job
    epochs: list[tuple[float, float]] = []

    def report(epoch: Any) -> bool:
        epochs.append((float(epoch.val_top1), float(epoch.seconds)))
        return False

    result = fit(from_dict(config), report, device="cpu")
    if result.status == "non_finite":
        epochs.append((math.nan, 0.0))
    return number, seed, epochs


def _done(path: Path) -> set[tuple[int, int]]:
    if not path.exists():
        return set()
    with path.open(newline="") as f:
        return {(int(r["config"]), int(r["seed"])) for r in csv.DictReader(f)}


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build(out: Path, n_configs: int, seeds: int, workers: int, task: str = "demo") -> None:
    import torch

    import spaces
    from fgmodel.config import to_dict
    from search import preflight
    from search import spec as spec_mod

    spec = spec_mod.load(task)
    base = spec.base_config()
    preflight.check_data(base)  # the demo data is generated here, once
    base, pretrained = preflight.resolve_pretrained(base)
    trained = spec.trained_epochs(base)
    drawn = draw_configs(spec, base, n_configs)
    meta_path = out.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if meta and (meta["epochs"], meta["seeds"], meta["spec"]) != (trained, seeds, spec_mod.to_dict(spec)):
        sys.exit(f"{out} was built with another spec, epochs or seeds: build into a new --out")
    started = time.time()
    prior_seconds = float(meta.get("wall_seconds", 0.0))
    meta = {
        "version": VERSION, "built_by": "bench/curves.py", "commit": _commit(), "torch": torch.__version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "threads_per_run": 1, "workers": workers, "task": task, "spec": spec_mod.to_dict(spec),
        "pretrained": Path(pretrained).name, "epochs": trained, "seeds": seeds, "configs": len(drawn),
        "sampler": "optuna RandomSampler(seed=0), in-budget proposals, after the paper rows",
    }
    done = _done(out)
    jobs = [(number, seed, to_dict(spaces.config_from_params(spec.space, params, base).replace(
        **{"optim.seed": seed})))
        for number, (_, params, _) in enumerate(drawn) for seed in range(seeds) if (number, seed) not in done]
    print(f"{len(drawn)} configs x {seeds} seeds, {trained} epochs each: {len(done)} runs in {out}, "
          f"{len(jobs)} to train on {workers} workers", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = not out.exists()
    with out.open("a", newline="") as f:
        writer = csv.writer(f)
        if fresh:
            writer.writerow(FIELDS)
        for i, (number, seed, epochs) in enumerate(_results(jobs, workers), 1):
            label, params, gflops = drawn[number]
            writer.writerow((number, seed, label or "", f"{gflops:.6g}", " ".join(f"{t:.4f}" for t, _ in epochs),
                             " ".join(f"{s:.2f}" for _, s in epochs), json.dumps(params, sort_keys=True)))
            f.flush()
            elapsed = time.time() - started
            _write_meta(meta_path, meta, prior_seconds + elapsed)
            print(f"[{i}/{len(jobs)}] config {number} seed {seed}: top-1 {epochs[-1][0]:.3f} "
                  f"({elapsed / i * (len(jobs) - i) / 60:.0f} min left)", flush=True)
    _write_meta(meta_path, meta, prior_seconds + time.time() - started)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB) and {meta_path.name}")


def _write_meta(path: Path, meta: dict[str, Any], wall_seconds: float) -> None:
    """The build's record, rewritten after each run (the CSV never runs ahead of it)."""
    meta["wall_seconds"] = round(wall_seconds, 1)
    path.write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def _results(jobs: list[tuple[int, int, dict[str, Any]]], workers: int) -> Iterator[tuple[int, int, list]]:
    if workers <= 1:
        yield from map(_run, jobs)
        return
    with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=20) as pool:
        yield from pool.imap_unordered(_run, jobs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", type=int, default=400, help="random in-budget configs (besides the paper rows)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=max((os.cpu_count() or 1), 1))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    build(args.out, args.configs, args.seeds, args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The pixel cache of a search: one absolute folder, built once under a lock by whichever process comes first."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from data_fixtures import jpeg

from fgmodel.config import RunConfig
from fgmodel.data import DEMO_PROFILE, Sample, build_loaders
from fgmodel.data import cache as cache_mod
from fgmodel.data.cache import build_cache, cache_file, resized
from fgmodel.data.loader import build_caches


def _samples(folder: Path, n: int = 6) -> list[Sample]:
    return [Sample(str(jpeg(folder / f"{i}.jpg", size=(50, 40), seed=i)), i % 3) for i in range(n)]


def _digest(path: Path) -> str:
    return hashlib.sha1(np.fromfile(path, dtype=np.uint8).tobytes()).hexdigest()


def _build_in_child(samples: list[Sample], cache_dir: str, log: str, barrier, results) -> None:
    """Count this process's builds in `log`; a build holds the lock long enough that the other process must wait."""
    real = cache_mod._build

    def counted(*args, **kwargs):
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        real(*args, **kwargs)

    cache_mod._build = counted
    barrier.wait()  # both ask for the cache at the same moment
    path = build_cache(samples, 32, cache_dir, workers=1, progress=False)
    results.put((str(path), _digest(path)))


def test_two_processes_starting_together_build_the_cache_once_and_read_the_same_pixels(tmp_path: Path):
    samples = _samples(tmp_path / "jpegs")
    log = tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_build_in_child, args=(samples, str(tmp_path / "cache"), str(log), barrier, results))
             for _ in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(log.read_text().split()) == 1  # one build; the other process waited and read it
    expected = np.stack([np.asarray(resized(s.path, 0, 32)) for s in samples])
    assert got[0] == got[1] == (str(cache_file(samples, 32, tmp_path / "cache")),
                                hashlib.sha1(expected.tobytes()).hexdigest())
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert [Path(n).suffix for n in names] == [".json", ".lock", ".u8"]  # no temporary folder left


def test_a_killed_build_is_not_taken_for_a_cache_and_its_leftovers_go(tmp_path: Path, monkeypatch):
    samples = _samples(tmp_path / "jpegs", 3)
    final = cache_file(samples, 32, tmp_path / "cache")
    final.parent.mkdir()
    final.write_bytes(b"half")  # renamed into place, then killed before the .json
    stale = final.parent / f".tmp-{final.stem}-dead"
    stale.mkdir()
    (stale / final.name).write_bytes(b"partial")
    builds = []
    real = cache_mod._build
    monkeypatch.setattr(cache_mod, "_build", lambda *a, **k: builds.append(1) or real(*a, **k))
    assert build_cache(samples, 32, tmp_path / "cache", workers=1, progress=False) == final
    assert builds == [1] and not stale.exists() and final.stat().st_size == 3 * 32 * 32 * 3
    assert build_cache(samples, 32, tmp_path / "cache", workers=1, progress=False) == final and builds == [1]


def test_build_caches_builds_ahead_and_makes_the_folder_absolute(demo_root: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig().replace(**{**DEMO_PROFILE, "data.root": str(demo_root), "data.num_workers": 0,
                                 "data.cache_dir": "pixels"})
    assert build_caches(cfg.replace(**{"data.cache_dir": None})) == cfg.replace(**{"data.cache_dir": None})
    ready = build_caches(cfg, image_sizes=[32, 40, 32], workers=1, progress=False)
    assert ready == cfg.replace(**{"data.cache_dir": str(tmp_path / "pixels")})
    assert sorted(p.name.split("-")[1] for p in (tmp_path / "pixels").glob("*.u8")) == ["32px.u8"] * 2 + ["40px.u8"] * 2
    built = []
    monkeypatch.setattr(cache_mod, "_build", lambda *a, **k: built.append(a))
    monkeypatch.chdir(tmp_path / "pixels")  # a trial's working directory: the absolute folder still finds them
    loaders = build_loaders(ready.replace(**{"data.image_size": 40}), batch_size=8)
    assert built == [] and Path(loaders.train.dataset.file).parent == tmp_path / "pixels"
    elsewhere = build_caches(cfg, workers=1, progress=False)  # "pixels" seen from there: another, empty folder
    assert elsewhere.data.cache_dir == str(tmp_path / "pixels" / "pixels") and len(built) == 2

"""The driver's pixel cache: every size the space draws, built once before the first trial, in an absolute folder."""

from __future__ import annotations

from search import spec
from search.driver import build_cache, space_image_sizes


def test_the_sizes_the_space_draws_under_the_budget():
    base = spec.load("foodx").base_config()
    assert space_image_sizes("default", base, 0.05) == [168, 192, 224]  # 256 px is over +5%
    assert space_image_sizes("paper", base, 0.05) == [224]


def test_the_cache_is_built_once_in_an_absolute_folder(tmp_path, monkeypatch, small_demo_root):
    monkeypatch.chdir(tmp_path)
    s = spec.load("demo").replace(image_size=32, data_root=str(small_demo_root),
                                  config={**spec.load("demo").config, "data.cache_dir": "cache"})
    base = s.base_config()
    assert build_cache(base.replace(**{"data.cache_dir": None}), s).data.cache_dir is None  # off: nothing built
    built = build_cache(base, s)
    assert built.data.cache_dir == str(tmp_path / "cache")  # the trials' working directories do not matter
    files = sorted((tmp_path / "cache").glob("*.json"))
    assert len(files) == 2  # the training part of the split and the validation part, at the one size 32 px draws
    stamps = [f.stat().st_mtime_ns for f in files]
    assert build_cache(base, s) == built and [f.stat().st_mtime_ns for f in files] == stamps  # found, not rebuilt

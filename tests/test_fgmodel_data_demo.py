"""The generated demo set: deterministic, CUB layout, read by the cub loader, and loadable."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fgmodel.config import RunConfig
from fgmodel.data import DEMO_PROFILE, NUM_CLASSES, build_loaders, demo, get_task, load_task


def _files(top: Path) -> dict[str, bytes]:
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


def test_generation_is_deterministic(tmp_path: Path):
    demo.write(tmp_path / "a", seed=7, per_class=2, train_per_class=1)
    demo.write(tmp_path / "b", seed=7, per_class=2, train_per_class=1)
    demo.write(tmp_path / "c", seed=8, per_class=2, train_per_class=1)
    a, b, c = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert len(a) == 20 * 2 + 5 and a == b
    assert a["images.txt"] == c["images.txt"] and a != c  # same layout, other pixels


def test_demo_reads_through_the_cub_loader(demo_root: Path):
    data = load_task("demo", demo_root)
    assert (demo_root / "demo" / f"v{demo.VERSION}-seed{demo.SEED}" / "CUB_200_2011" / "images.txt").is_file()
    assert len(data.classes) == NUM_CLASSES["demo"] == get_task("demo").num_classes == 20
    assert data.classes[:2] == ["001.red_crown", "002.red_wing"]
    assert len(data.train) == 20 * demo.TRAIN_PER_CLASS
    assert len(data.test) == 20 * (demo.PER_CLASS - demo.TRAIN_PER_CLASS)
    assert sorted({s.label for s in data.train}) == list(range(20))
    assert data.train[0].path.endswith("images/001.red_crown/red_crown_0000.jpg")
    # image 1 on disk is exactly what the generator renders for (seed, 1)
    from PIL import Image

    on_disk = Image.open(data.train[0].path)
    assert 80 <= on_disk.width <= 96 and 64 <= on_disk.height <= 80
    assert on_disk.size == demo.render(demo.SEED, 1, 0).size


_GENERATE = """
import os, sys, time
from pathlib import Path
from fgmodel.data import demo, load_task
demo.PER_CLASS, demo.TRAIN_PER_CLASS = 2, 1
root = Path(sys.argv[1])
(root / f"ready-{os.getpid()}").touch()
while len(list(root.glob("ready-*"))) < 3:  # start generating together, not one after another
    time.sleep(0.01)
print(len(load_task("demo", root).train))
"""


@pytest.mark.slow
def test_concurrent_generation_ends_with_one_complete_copy(tmp_path: Path):
    """Three processes (the claim is about processes) generate a tiny set at once."""
    procs = [subprocess.Popen([sys.executable, "-c", _GENERATE, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == ["20", "20", "20"]
    base = tmp_path / "demo" / f"v{demo.VERSION}-seed{demo.SEED}"
    assert [p.name for p in base.iterdir()] == ["CUB_200_2011"]  # temp dirs cleaned up
    assert len(load_task("demo", tmp_path).test) == 20


@pytest.mark.parametrize("eval_on, sizes", [("val", (720, 80)), ("test", (800, 400))])
def test_build_loaders_on_demo(demo_root: Path, eval_on: str, sizes: tuple[int, int]):
    cfg = RunConfig().replace(**DEMO_PROFILE, **{"data.root": str(demo_root), "data.eval_on": eval_on,
                                                 "data.num_workers": 0, "augment.hflip_p": 0.5})
    loaders = build_loaders(cfg, batch_size=16)
    assert set(loaders.train.dataset.labels) == set(loaders.eval.dataset.labels) == set(range(20))
    assert (len(loaders.train.dataset), len(loaders.eval.dataset)) == sizes
    images, labels, n_bad = next(iter(loaders.train))
    size = DEMO_PROFILE["data.image_size"]
    assert images.shape == (16, 3, size, size) and images.dtype == torch.uint8  # normalised on the device
    assert labels.dtype == torch.long and int(n_bad) == 0
    first_epoch = next(iter(build_loaders(cfg, batch_size=16).train))[1].tolist()
    other_seed = next(iter(build_loaders(cfg.replace(**{"optim.seed": 1}), batch_size=16).train))[1].tolist()
    assert first_epoch == next(iter(build_loaders(cfg, batch_size=16).train))[1].tolist()  # seeded by optim.seed
    assert first_epoch != other_seed


def test_build_loaders_with_cache_matches_uncached(demo_root: Path, tmp_path: Path):
    cfg = RunConfig().replace(**DEMO_PROFILE, **{"data.root": str(demo_root), "data.num_workers": 0})
    plain = build_loaders(cfg, batch_size=8).eval
    cached = build_loaders(cfg.replace(**{"data.cache_dir": str(tmp_path)}), batch_size=8).eval
    a, b = next(iter(plain)), next(iter(cached))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert len(list(tmp_path.glob("*.u8"))) == 2  # train and eval sets

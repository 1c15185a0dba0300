"""Bad files are skipped and counted through a real DataLoader; `check` lists them."""

from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import jpeg, make_cub
from PIL import Image
from torch.utils.data import DataLoader

from fgmodel.data import ImageDataset, Sample, collate, load_image, load_task
from fgmodel.data.__main__ import main
from fgmodel.data.check import check


def _to_tensor(image):
    return torch.from_numpy(np.array(image.resize((32, 32)))).permute(2, 0, 1).float()


def _break(paths: list[str]) -> None:
    """Corrupt (not an image), truncated (half a JPEG) and zero-byte files, in that order."""
    Path(paths[0]).write_bytes(b"this is not a jpeg at all" * 10)
    data = Path(paths[1]).read_bytes()
    Path(paths[1]).write_bytes(data[: len(data) // 2])
    Path(paths[2]).write_bytes(b"")


def test_truncated_file_really_fails_to_decode(tmp_path: Path):
    path = jpeg(tmp_path / "t.jpg", size=(64, 64))
    _break([str(jpeg(tmp_path / "a.jpg")), str(path), str(jpeg(tmp_path / "b.jpg"))])
    with pytest.raises(OSError, match="truncated"):
        load_image(str(path))
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_bad_images_are_replaced_and_counted_in_batches(tmp_path: Path):
    paths = [str(jpeg(tmp_path / f"{i}.jpg", seed=i)) for i in range(8)]
    _break([paths[1], paths[2], paths[5]])
    paths.append(str(tmp_path / "missing.jpg"))  # index 8: never existed
    samples = [Sample(p, i) for i, p in enumerate(paths)]
    loader = DataLoader(ImageDataset(samples, _to_tensor), batch_size=3, shuffle=False, collate_fn=collate)
    batches = list(loader)
    assert [tuple(b[1].tolist()) for b in batches] == [(0, 3, 3), (3, 4, 6), (6, 7, 0)]
    # index 1 -> 3 skips 1 and 2; index 2 -> 3 skips 2; 5 -> 6; 8 wraps round to 0
    assert [int(b[2]) for b in batches] == [3, 1, 1]
    assert batches[0][0].shape == (3, 3, 32, 32) and batches[0][0].dtype == torch.float32
    assert batches[0][2].dtype == torch.long and batches[0][2].ndim == 0


def test_bad_images_through_worker_processes(tmp_path: Path):
    paths = [str(jpeg(tmp_path / f"{i}.jpg", seed=i)) for i in range(6)]
    _break([paths[0], paths[2], paths[4]])
    loader = DataLoader(ImageDataset([Sample(p, i) for i, p in enumerate(paths)], _to_tensor), batch_size=6,
                        num_workers=1, collate_fn=collate)
    (images, labels, n_bad), = list(loader)
    assert labels.tolist() == [1, 1, 3, 3, 5, 5] and int(n_bad) == 3


def test_all_bad_raises_clear_error(tmp_path: Path):
    path = tmp_path / "x.jpg"
    path.write_bytes(b"")
    with pytest.raises(RuntimeError, match="failed to decode; run `python -m fgmodel.data check`"):
        ImageDataset([Sample(str(path), 0)])[0]


def test_draft_keeps_at_least_target_size(tmp_path: Path):
    path = str(jpeg(tmp_path / "big.jpg", size=(500, 375)))
    assert load_image(path, 0, 224).size == (500, 375)  # half would be 188 rows < 224
    assert load_image(path, 0, 150).size == (250, 188)
    assert load_image(path, 0, 40).size == (63, 47)  # 1/8, both sides still >= 40
    assert load_image(path).size == (500, 375)


def test_check_lists_bad_images(tmp_path: Path, capsys):
    top = make_cub(tmp_path, per_class=(3, 3))
    data = load_task("cub", tmp_path)
    victims = [data.train[0].path, data.train[2].path, data.test[0].path]
    _break(victims)
    result = check("cub", tmp_path, workers=2, progress=False)
    assert result.counts == {"train": 4, "test": 2, "classes": 2}
    assert [p for p, _ in result.bad] == sorted(victims)
    assert main(["check", "cub", "--root", str(top), "--no-progress", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "4 train, 2 test, 2 classes" in out and "3 bad image(s)" in out
    assert all(f"bad: {p} (" in out for p in victims)


def test_check_broken_layout_exits_2(tmp_path: Path, capsys):
    assert main(["check", "cub", "--root", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        f"error: cub: {tmp_path / 'CUB_200_2011' / 'images.txt'} not found; download it with: "
        f"python -m fgmodel.data download cub --root {tmp_path}"
    )


def test_resized_cache_gives_the_same_pixels_and_skips_bad(tmp_path: Path):
    from torchvision.transforms import v2

    from fgmodel.data.cache import CachedDataset, build_cache

    paths = [str(jpeg(tmp_path / f"{i}.jpg", size=(90, 70), seed=i)) for i in range(5)]
    paths.append(str(jpeg(tmp_path / "plane.jpg", size=(90, 80), seed=9, banner=20)))
    _break([paths[1], paths[2], paths[3]])
    samples = [Sample(p, i, 20 if "plane" in p else 0) for i, p in enumerate(paths)]
    tf = v2.Compose([v2.Resize((32, 32), antialias=True), v2.PILToTensor()])
    plain = ImageDataset(samples, tf, 32)
    cached = CachedDataset(samples, tf, 32, tmp_path / "cache", workers=2, progress=False)
    assert sorted(cached._bad) == [1, 2, 3]
    for i in (0, 1, 4, 5):
        a, b = plain[i], cached[i]
        assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    assert cached[1][1:] == (4, 3)
    batch = next(iter(DataLoader(cached, batch_size=6, num_workers=1, collate_fn=collate)))
    assert batch[1].tolist() == [0, 4, 4, 4, 4, 5] and int(batch[2]) == 6
    file = Path(cached.file)
    stamp = file.stat().st_mtime_ns
    assert build_cache(samples, 32, tmp_path / "cache", progress=False) == file and file.stat().st_mtime_ns == stamp
    assert build_cache(samples, 48, tmp_path / "cache", progress=False) != file  # keyed by size


def test_collate_lays_image_batches_out_channels_last_as_the_model_runs():
    from torchvision.transforms import v2

    images = [v2.ToImage()(Image.effect_noise((12, 10), 40 + i).convert("RGB")) for i in range(3)]
    batch, labels, n_bad = collate([(image, i, 0) for i, image in enumerate(images)])
    assert batch.dtype == torch.uint8 and batch.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(batch, torch.stack(images)) and labels.tolist() == [0, 1, 2] and int(n_bad) == 0


@pytest.mark.parametrize("n, batch_size, drops", [(100, 32, True), (64, 32, True), (32, 32, True), (31, 32, False)])
def test_the_train_loader_drops_a_short_last_batch_unless_it_is_the_only_one(n: int, batch_size: int, drops: bool):
    from fgmodel.data.loader import _loader, train_drop_last

    assert train_drop_last(n, batch_size) is drops
    samples = [Sample(f"/none/{i}.jpg", 0) for i in range(n)]
    train = _loader(ImageDataset(samples), batch_size, True, 0, False, 0)
    evaluation = _loader(ImageDataset(samples), batch_size, False, 0, False, 0)
    assert len(train) == (n // batch_size if drops else 1) and len(evaluation) == -(-n // batch_size)

import warnings
from pathlib import Path

import pytest
from data_fixtures import AIRCRAFT_VARIANTS, make_aircraft, make_cub, make_foodx

from fgmodel.data import DatasetNotFound, Sample, aircraft, cub, foodx, load_image, load_task


@pytest.mark.parametrize("form", ["parent", "top"])
def test_cub_counts_labels_and_both_root_forms(tmp_path: Path, form: str):
    top = make_cub(tmp_path, per_class=(3, 4, 5))
    data = load_task("cub", tmp_path if form == "parent" else top)
    assert data.classes == ["001.Bird_A", "002.Bird_B", "003.Bird_C"]
    # k % 2 == 1 is test: classes of 3, 4, 5 images -> 2+2+3 train, 1+2+2 test
    assert len(data.train) == 7 and len(data.test) == 5
    assert [s.label for s in data.train] == [0, 0, 1, 1, 2, 2, 2]
    assert [s.label for s in data.test] == [0, 1, 1, 2, 2]
    first = data.train[0]
    assert first == Sample(str(top / "images/001.Bird_A/Bird_A_0000_1.jpg"), 0, 0)
    assert all(Path(s.path).is_file() for s in data.train + data.test)


def test_aircraft_variants_with_spaces_and_banner(tmp_path: Path):
    top = make_aircraft(tmp_path, trainval=2, test=1)
    for root in (tmp_path, top):
        data = load_task("aircraft", root)
        assert data.classes == AIRCRAFT_VARIANTS
        assert [s.label for s in data.train] == [0, 0, 1, 1, 2, 2]
        assert [s.label for s in data.test] == [0, 1, 2]
        assert {s.crop_bottom for s in data.train + data.test} == {20}
    image = load_image(data.train[0].path, data.train[0].crop_bottom)
    assert image.size == (40, 40)  # 60 rows, banner of 20 removed
    assert max(image.getextrema()[0]) < 200  # the white strip is gone (pixels are < 120)


def test_banner_crop_scales_with_draft(tmp_path: Path):
    from data_fixtures import jpeg

    path = jpeg(tmp_path / "big.jpg", size=(400, 300), banner=40)
    image = load_image(str(path), 40, min_size=64)  # draft decodes at 1/4: 100x75
    assert image.size == (100, 65) and min(image.size) >= 64
    assert max(image.getextrema()[0]) < 200


def test_cub_aircraft_offsets(tmp_path: Path):
    make_cub(tmp_path, per_class=(2, 2))
    make_aircraft(tmp_path, trainval=1, test=1)
    data = load_task("cub_aircraft", tmp_path)
    assert data.classes == ["001.Bird_A", "002.Bird_B"] + AIRCRAFT_VARIANTS
    assert [s.label for s in data.train] == [0, 1, 2, 3, 4]
    assert [s.label for s in data.test] == [0, 1, 2, 3, 4]
    assert [s.crop_bottom for s in data.train] == [0, 0, 20, 20, 20]


@pytest.mark.parametrize("nested", [False, True])
def test_foodx_headerless_csv(tmp_path: Path, nested: bool):
    top = make_foodx(tmp_path / "foodx" if nested else tmp_path, train=(3, 2, 2, 1), val=1)
    data = load_task("foodx", tmp_path)
    assert data.classes == ["macaron", "beignet", "cruller", "cockle_food"]
    assert [s.label for s in data.train] == [0, 0, 0, 1, 1, 2, 2, 3]  # first row is data, not a header
    assert [s.label for s in data.test] == [0, 1, 2, 3]
    assert data.train[0].path == str(top / "train_set" / "train_000001.jpg")
    assert all(Path(s.path).is_file() for s in data.train + data.test)


@pytest.mark.parametrize(
    "task, expected",
    [
        ("cub", "CUB_200_2011/images.txt"),
        ("cub_aircraft", "CUB_200_2011/images.txt"),
        ("aircraft", "fgvc-aircraft-2013b/data/variants.txt"),
        ("foodx", "foodx/class_list.txt"),
    ],
)
def test_missing_root_names_file_and_download_command(tmp_path: Path, task: str, expected: str):
    root = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFound) as info:
        load_task(task, root)
    message = str(info.value)
    assert message == (
        f"{task}: {root / expected} not found; download it with: python -m fgmodel.data download {task} --root {root}"
    )
    assert "\n" not in message and isinstance(info.value, FileNotFoundError)


def test_missing_list_file_is_named(tmp_path: Path):
    top = make_cub(tmp_path)
    (top / "train_test_split.txt").unlink()
    with pytest.raises(DatasetNotFound, match="train_test_split.txt not found"):
        load_task("cub", tmp_path)


def test_count_mismatch_warns_only_when_complete(tmp_path: Path, monkeypatch):
    make_cub(tmp_path, per_class=(3, 4, 5))
    make_foodx(tmp_path / "foodx")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a partial fixture set is not checked
        load_task("cub", tmp_path)
        load_task("foodx", tmp_path)
    monkeypatch.setattr(cub, "OFFICIAL_CLASSES", 3)
    with pytest.warns(UserWarning, match="train has 7 images, official 5994, test has 5 images, official 5794"):
        data = load_task("cub", tmp_path)
    assert len(data.train) == 7  # a warning, not a crash
    monkeypatch.setattr(foodx, "OFFICIAL_CLASSES", 4)
    monkeypatch.setattr(foodx, "OFFICIAL", {"train": 8, "test": 5})
    with pytest.warns(UserWarning, match=r"^FoodX-251: test has 4 images, official 5$"):
        load_task("foodx", tmp_path)
    make_aircraft(tmp_path)
    monkeypatch.setattr(aircraft, "OFFICIAL_CLASSES", 3)
    with pytest.warns(UserWarning, match="FGVC-Aircraft 2013b: train has 6 images, official 6667"):
        load_task("aircraft", tmp_path)


def test_cub_aircraft_checks_cub_and_the_combined_counts(tmp_path: Path, monkeypatch):
    from fgmodel.data import cub_aircraft

    make_cub(tmp_path, per_class=(3, 4, 5))  # 7 train, 5 test
    make_aircraft(tmp_path, trainval=2, test=1)  # 6 trainval, 3 test
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # partial sets: nothing checked
        load_task("cub_aircraft", tmp_path)
    monkeypatch.setattr(cub, "OFFICIAL_CLASSES", 3)
    monkeypatch.setattr(aircraft, "OFFICIAL_CLASSES", 3)
    monkeypatch.setattr(cub_aircraft, "OFFICIAL_CLASSES", 6)
    with pytest.warns(UserWarning) as caught:
        data = load_task("cub_aircraft", tmp_path)
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("CUB-200-2011: train has 7 images, official 5994") for m in messages)  # CUB inside
    combined = "CUB-200-2011 + FGVC-Aircraft: train has 13 images, official 12661, test has 8 images, official 9127"
    assert combined in messages
    assert len(data.train) == 13
    monkeypatch.setattr(cub, "OFFICIAL", {"train": 7, "test": 5})
    monkeypatch.setattr(aircraft, "OFFICIAL", {"train": 6, "test": 3})
    monkeypatch.setattr(cub_aircraft, "OFFICIAL", {"train": 13, "test": 9})
    with pytest.warns(UserWarning) as caught:
        load_task("cub_aircraft", tmp_path)
    assert [str(w.message) for w in caught] == ["CUB-200-2011 + FGVC-Aircraft: test has 8 images, official 9"]


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


CUB, AIR = "CUB_200_2011/", "fgvc-aircraft-2013b/data/"


@pytest.mark.parametrize("task, file, old, new, expected", [
    ("cub", CUB + "image_class_labels.txt", "3 1\n", "",
     r"image_class_labels.txt: no row for image id 3 \(images.txt line 3\)"),
    ("cub", CUB + "train_test_split.txt", "2 0\n", "2 x\n", r"train_test_split.txt, line 2: expected 0 or 1, got 'x'"),
    ("cub", CUB + "images.txt", "4 ", "four ", r"images.txt, line 4: id 'four' is not an integer"),
    ("cub", CUB + "image_class_labels.txt", "1 1\n", "1 9\n",
     r"image_class_labels.txt, line 1: class id 9 is not in classes.txt"),
    ("cub", CUB + "classes.txt", "2 002.Bird_B", "2", r"classes.txt, line 2: expected '<id> <value>', got '2'"),
    ("foodx", "foodx/train_info.csv", "train_000002.jpg,0", "train_000002.jpg",
     r"train_info.csv, line 2: expected '<image>,<class id>'"),
    ("foodx", "foodx/val_info.csv", "val_000004.jpg,0", "val_000004.jpg,zero",
     r"val_info.csv, line 1: class id 'zero' is not an integer"),
    ("foodx", "foodx/train_info.csv", "train_000002.jpg,0", "train_000002.jpg,7",
     r"train_info.csv, line 2: class id 7 is not in class_list.txt"),
    ("aircraft", AIR + "images_variant_test.txt", "Boeing 737-700", "Boeing 737-7000",
     r"images_variant_test.txt, line 2: variant 'Boeing 737-7000' is not in variants.txt"),
    ("cub_aircraft", AIR + "images_variant_trainval.txt", "1000001 Cessna 172", "1000001",
     r"images_variant_trainval.txt, line 1: expected '<image id> <variant>'"),
])
def test_malformed_list_files_raise_one_error_naming_file_and_line(tmp_path: Path, capsys, task, file, old, new,
                                                                    expected):
    from fgmodel.data import DatasetError
    from fgmodel.data.__main__ import main

    make_cub(tmp_path, per_class=(3, 4))
    make_aircraft(tmp_path)
    make_foodx(tmp_path / "foodx")
    load_task(task, tmp_path)  # well-formed first
    _rewrite(tmp_path / file, old, new)
    with pytest.raises(DatasetError, match=expected):
        load_task(task, tmp_path)
    assert main(["check", task, "--root", str(tmp_path), "--no-progress", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and "Traceback" not in err


def test_dataset_errors_survive_pickling():
    """They travel from a Ray worker to the driver by pickle."""
    import pickle

    from fgmodel.data import DatasetError

    for exc in (DatasetNotFound("cub", "/d/CUB_200_2011/images.txt", "/d"),
                DatasetError("/d/x.txt", 3, "bad row"), DatasetError("/d/x.txt", None, "empty")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.args == exc.args
    back = pickle.loads(pickle.dumps(DatasetNotFound("cub", "/d/m", "/d")))
    assert (back.task, back.missing, back.root) == ("cub", "/d/m", "/d") and isinstance(back, FileNotFoundError)

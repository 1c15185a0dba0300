"""Pre-flight: every check runs before the study is created, so a failed one leaves nothing to trip on.

The slow test is the issue's case: ``--gpus-per-trial 1`` on a CPU-only node used to fail
only after the study was created, so the same command run again said "already exists".
"""

from __future__ import annotations

import optuna
import pytest

from fgmodel.config import ConfigError
from search import preflight, run
from search import spec as spec_mod
from search import study as study_mod
from search.studydir import default_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _spec(tmp_path, **changes):
    return spec_mod.load("demo").replace(study_dir=str(tmp_path / "study"), data_root=str(tmp_path / "data"),
                                         **changes)


def test_check_storage_creates_no_sqlite_file(tmp_path):
    spec = _spec(tmp_path)
    url = default_storage(spec.directory)
    preflight.check_storage(spec, url, resume=False)
    assert not spec.directory.exists()
    with pytest.raises(study_mod.StudyExists, match="no study 'demo' .* to resume"):
        preflight.check_storage(spec, url, resume=True)
    assert not spec.directory.exists()


def test_check_storage_sees_a_taken_name(tmp_path):
    spec = _spec(tmp_path)
    url = f"sqlite:///{tmp_path / 'other.db'}"
    optuna.create_study(study_name="demo", storage=url)
    with pytest.raises(study_mod.StudyExists, match="already exists .* --resume"):
        preflight.check_storage(spec, url, resume=False)
    preflight.check_storage(spec, url, resume=True)


def test_missing_storage_driver_fails_before_anything_is_written(tmp_path, capsys):
    spec = _spec(tmp_path)
    code = run.main(["--task", "demo", "--storage", "mysql+mysqldb://u:secret@127.0.0.1:1/db",
                     "--study-dir", spec.study_dir, "--data-root", spec.data_root])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "pip install mysqlclient" in err and "secret" not in err
    assert not spec.directory.exists() and not (tmp_path / "data").exists()  # before the data check too


def test_default_pretrained_reads_timm_offline():
    assert preflight.default_pretrained("convnextv2_base") == "convnextv2_base.fcmae_ft_in22k_in1k"
    assert preflight.default_pretrained("convnextv2_atto") == "convnextv2_atto.fcmae_ft_in1k"
    with pytest.raises(ConfigError, match="^backbone: timm has no model 'convnextv2_gigantic'"):
        preflight.default_pretrained("convnextv2_gigantic")


@pytest.mark.slow
def test_gpu_request_on_a_cpu_node_fails_before_the_study_and_again_the_same(tmp_path, demo_root, capsys):
    import ray
    import torch

    gpus = torch.cuda.device_count() + 1  # 1 on a CPU-only node, the case
    if ray.is_initialized():  # a Ray of another test module would not be this search's
        ray.shutdown()
    argv = ["--task", "demo", "--gpus-per-trial", str(gpus), "--study-dir", str(tmp_path / "study"),
            "--data-root", str(demo_root)]
    for _ in range(2):  # the second run meets the same error, not "already exists"
        assert run.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"error: gpus_per_trial: a trial needs 1 CPUs and {gpus} GPUs")
        assert not (tmp_path / "study").exists()
        assert not ray.is_initialized()  # the Ray it started is shut down again

"""Reading a study stays light: the report and export pull in neither torch, timm nor Ray."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.slow
def test_reading_a_study_imports_neither_torch_nor_timm():
    code = "import sys, search.report, search.export; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "'optuna'" in loaded  # the probe itself works
    for heavy in ("torch", "timm", "ray", "torchvision"):
        assert f"'{heavy}'" not in loaded, heavy

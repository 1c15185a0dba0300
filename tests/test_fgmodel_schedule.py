"""fgmodel.schedule: where StepLR's dead tail starts, on hand-made schedules."""

import pytest

from fgmodel.config import OptimConfig
from fgmodel.schedule import lr_factor, useful_epochs


def test_the_papers_schedule_is_dead_from_epoch_ten_at_one_percent():
    paper = OptimConfig()  # lr 1e-4, x0.1 every 5 epochs, 30 epochs
    assert [lr_factor(paper, e) for e in (0, 4, 5, 9, 10, 29)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 1e-5])
    assert useful_epochs(paper, 0.01) == 10
    assert useful_epochs(paper, 0.001) == 15
    assert useful_epochs(paper, 0.05) == 10  # 0.1 is above 5%, 0.01 below
    assert useful_epochs(paper, 0.5) == 5


@pytest.mark.parametrize(
    ("optim", "fraction", "expected"),
    [
        (OptimConfig(gamma=1.0), 0.01, 30),  # a constant rate never dies
        (OptimConfig(epochs=8), 0.01, 8),  # the schedule ends first
        (OptimConfig(step_size=3, gamma=0.5), 0.1, 12),  # 0.5 ** 4 = 0.0625 is the first factor under 0.1
        (OptimConfig(gamma=0.0), 0.01, 5),  # zero after the first step
        (OptimConfig(), None, 30),  # the rule switched off
    ],
)
def test_useful_epochs(optim, fraction, expected):
    assert useful_epochs(optim, fraction) == expected

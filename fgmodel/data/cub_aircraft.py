"""The paper's Task 2: CUB-200-2011 classes first (0-199), FGVC-Aircraft variants after (200-299).

`root` is the folder holding both archives' top folders (`CUB_200_2011/`,
`fgvc-aircraft-2013b/`), the layout `python -m fgmodel.data download cub_aircraft` makes.
"""

from __future__ import annotations

from pathlib import Path

from fgmodel.data import aircraft, cub
from fgmodel.data._registry import Sample, TaskData, check_counts, register_task

OFFICIAL = {"train": 12661, "test": 9127}
OFFICIAL_CLASSES = 300


@register_task(
    "cub_aircraft",
    num_classes=OFFICIAL_CLASSES,
    description="CUB-200-2011 + FGVC-Aircraft 2013b variants",
    archives=cub.ARCHIVES + aircraft.ARCHIVES,
)
def load(root: str | Path) -> TaskData:
    """Each part checks its own official counts; the combined totals are checked here."""
    birds = cub.load(root, task="cub_aircraft")
    planes = aircraft.load(root, task="cub_aircraft")
    offset = len(birds.classes)

    def shifted(samples: list[Sample]) -> list[Sample]:
        return [s._replace(label=s.label + offset) for s in samples]

    data = TaskData(
        birds.train + shifted(planes.train),
        birds.test + shifted(planes.test),
        birds.classes + planes.classes,
    )
    if len(data.classes) == OFFICIAL_CLASSES:
        check_counts("CUB-200-2011 + FGVC-Aircraft", {"train": len(data.train), "test": len(data.test)}, OFFICIAL)
    return data

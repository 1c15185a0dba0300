"""Moved: the task table is `fgmodel.data` (`NUM_CLASSES`, `get_task`), `DEMO_PROFILE` lives with the demo task.

Kept only for the imports not yet moved; delete it once nothing imports `fgmodel.tasks`.
"""

from fgmodel.data import DEMO_PROFILE, NUM_CLASSES

__all__ = ["DEMO_PROFILE", "NUM_CLASSES"]

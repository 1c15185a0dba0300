"""The FLOPs budget rule, light enough (no torch) for the modules that only read a study.

A config is within budget when it costs at most ``(1 + budget) x`` the baseline's GFLOPs
(budget 0.05 = +5%). `fgmodel.flops` measures; this module only compares.
"""

from __future__ import annotations

__all__ = ["budget_limit", "within_budget"]


def budget_limit(baseline_gflops: float, budget: float) -> float:
    """The most GFLOPs a config may cost: (1 + budget) x the baseline (budget 0.05 = +5%)."""
    return (1.0 + float(budget)) * float(baseline_gflops)


def within_budget(cost_gflops: float, baseline_gflops: float, budget: float) -> bool:
    """True if `cost_gflops` is at most `budget_limit(baseline_gflops, budget)`."""
    return cost_gflops <= budget_limit(baseline_gflops, budget)

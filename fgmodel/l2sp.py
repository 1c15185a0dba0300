"""L2-SP: pull fine-tuned weights toward their pretrained starting point (Li et al., 2018).

The term ``lam * sum ||w - w0||^2`` over `model.l2sp_param_names` has the closed-form
gradient ``2 * lam * (w - w0)``, so it is applied straight to the gradients in one fused
`torch._foreach_*` pass instead of hundreds of small autograd ops in the loss.

Lifecycle: ``l2sp = L2SP(model, lam)`` right after building (and moving) the model;
each step ``loss.backward()``, then ``l2sp.apply_()`` (after
``scaler.unscale_(optimizer)`` under AMP), then ``optimizer.step()``.
"""

from __future__ import annotations

import torch
from torch import nn


class L2SP:
    """Snapshot of the reference weights and the fused gradient update toward them."""

    def __init__(self, model: nn.Module, lam: float):
        if lam < 0:
            raise ValueError(f"optim.l2sp_lambda: must be >= 0, got {lam}")
        self.lam = float(lam)
        named = dict(model.named_parameters())
        self.names: list[str] = list(model.l2sp_param_names) if self.lam > 0 else []
        self._params = [named[n] for n in self.names]
        self._refs = [p.detach().clone() for p in self._params]

    @torch.no_grad()
    def penalty(self) -> torch.Tensor:
        """``lam * sum ||w - w0||^2`` as a detached scalar (for logging only)."""
        if not self._params:
            return torch.zeros(())
        return self.lam * _sum_sq(torch._foreach_sub(self._params, self._refs))

    @torch.no_grad()
    def apply_(self) -> torch.Tensor:
        """Add ``2 * lam * (w - w0)`` to each grad in place; return the penalty (detached).

        The parameters are those snapshotted at construction. A parameter with no grad yet
        gets one, as autograd of the explicit penalty would give it.
        """
        if not self._params:
            return torch.zeros(())
        if self._refs[0].device != self._params[0].device:  # the model moved after construction
            self._refs = [r.to(p.device) for r, p in zip(self._refs, self._params)]
        for p in self._params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        diffs = torch._foreach_sub(self._params, self._refs)
        penalty = self.lam * _sum_sq(diffs)
        torch._foreach_add_([p.grad for p in self._params], diffs, alpha=2.0 * self.lam)
        return penalty


def _sum_sq(tensors: list[torch.Tensor]) -> torch.Tensor:
    norms = torch._foreach_norm(tensors)
    return torch.stack(norms).float().pow(2).sum()

"""The inner training step and evaluation, shared by `fit` and `bench/train_step.py`.

One place decides precision (bf16 autocast on CUDA, float32 on CPU), memory format
(channels_last everywhere: ConvNeXt's depthwise convs run faster on it, on CPU too: a
training step of atto at 40 px, two processes sharing 2 cores, 1.1x), where the loader's
uint8 batch becomes the model's float input (on the device: `Normalize`), micro-batching
with gradient accumulation, the non-finite guard and where L2SP acts (after backward,
before the optimizer step), so the benchmark measures exactly the code a search trial runs.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from fgmodel.stats import pack_hits


class NonFiniteLoss(RuntimeError):
    """The loss of a step is NaN or infinite; the step was not applied."""


class GradPenalty(Protocol):
    def apply_(self) -> torch.Tensor: ...


def autocast(device: torch.device) -> AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed); plain float32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def tune_backend(device: torch.device) -> None:
    """cuDNN autotuning on CUDA: every training batch has one shape (the loader drops a short last
    one), so the one-off search for the fastest convolution kernels pays from the second step on."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def to_device(images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch on ``device``, images channels_last like the model (`fgmodel.fit.fit`).

    The loader's collate already lays uint8 batches out channels_last, so this is a plain
    copy (from pinned memory, asynchronous on CUDA), with no permutation on either side.
    """
    cuda = device.type == "cuda"
    layout = torch.channels_last if images.dim() == 4 else torch.preserve_format
    images = images.to(device, non_blocking=cuda, memory_format=layout)
    return images, labels.to(device, non_blocking=cuda)


class Normalize:
    """uint8 images on the device -> float32 ``(x / 255 - mean) / std``, channels_last kept.

    The loader's workers stop at uint8 (a quarter of float32's bytes through shared memory,
    pinning and the host-to-device copy, and no float arithmetic on the CPU); this does what
    torchvision's ``ToDtype(float32, scale=True)`` + ``Normalize`` did there, in the same
    operations, so on the CPU the result is the same to the bit. The statistics are held on
    the device, so a step copies nothing but the batch.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], device: torch.device | str):
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"Normalize takes the loader's uint8 images, got {images.dtype}")
        return images.to(torch.float32).mul_(1.0 / 255).sub_(self.mean).div_(self.std)


Prepare = Callable[[torch.Tensor], torch.Tensor]


def _prepare(images: torch.Tensor, prepare: Prepare | None) -> torch.Tensor:
    if prepare is not None:
        return prepare(images)
    if images.dtype == torch.uint8:
        raise TypeError("uint8 images need a prepare step (fgmodel._train_step.Normalize) to become model input")
    return images


def make_optimizer(params, name: str, lr: float, weight_decay: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam / AdamW; the fused CUDA kernel where available (one launch for all tensors)."""
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[name]
    extra = {"fused": True} if device.type == "cuda" else {}
    return cls(params, lr=lr, weight_decay=weight_decay, **extra)


class TrainStep:
    """One optimizer step on one effective batch.

    The batch is split into micro-batches of at most `micro_batch` images whose losses
    (each scaled by its share of the batch) are backpropagated in turn, so the gradient is
    that of the whole batch (ConvNeXt normalises per sample: no batch statistics change).
    On CUDA an out-of-memory error halves the micro-batch and retries the same batch.
    A non-finite loss zeroes the gradients and raises `NonFiniteLoss` before any update.
    `prepare` turns the batch into the model's input once it is on the device (`Normalize`
    for the loader's uint8 images; None for float batches such as a benchmark's).
    Returns (mean loss, L2SP penalty tensor or None); the loss is read back once per step.
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, l2sp: GradPenalty | None = None,
                 *, micro_batch: int | None = None, forward: nn.Module | None = None, prepare: Prepare | None = None):
        self.model = model
        self.forward = forward if forward is not None else model  # e.g. a torch.compile'd wrapper
        self.optimizer = optimizer
        self.l2sp = l2sp
        self.micro_batch = micro_batch
        self.prepare = prepare
        self.device = next(model.parameters()).device

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor | None]:
        images, labels = to_device(images, labels, self.device)
        images = _prepare(images, self.prepare)
        while True:
            try:
                return self._step(images, labels)
            except torch.OutOfMemoryError:
                current = min(self.micro_batch or len(labels), len(labels))
                if self.device.type != "cuda" or current <= 1:
                    raise
            # outside the except block, so the failed step's frames (and memory) are freed
            self.optimizer.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
            self.micro_batch = current // 2
            warnings.warn(f"out of GPU memory at micro-batch {current}; retrying with {self.micro_batch} "
                          "and gradient accumulation", RuntimeWarning, stacklevel=2)

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, torch.Tensor | None]:
        n = len(labels)
        size = self.micro_batch or n
        self.optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        for start in range(0, n, size):
            with autocast(self.device):
                logits = self.forward(images[start:start + size])
            loss = F.cross_entropy(logits.float(), labels[start:start + size], reduction="sum") / n
            loss.backward()
            total += loss.detach()
        value = total.item()
        if not math.isfinite(value):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLoss(f"non-finite training loss ({value})")
        penalty = self.l2sp.apply_() if self.l2sp is not None else None
        self.optimizer.step()
        return value, penalty


def pad_batch(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """``images`` with zero images appended up to ``size`` (None, or already that big: as is).

    A compiled forward meets one batch shape in evaluation instead of recompiling for the
    last, shorter batch; ConvNeXt normalises per sample, so the padding changes no real
    image's logits, which are the first ``len(images)`` rows.
    """
    n = len(images)
    if size is None or n >= size:
        return images
    padded = images.new_zeros((size, *images.shape[1:])).contiguous(memory_format=_layout(images))
    padded[:n] = images
    return padded


def _layout(images: torch.Tensor) -> torch.memory_format:
    channels_last = images.dim() == 4 and images.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


class Evaluation(NamedTuple):
    top1: float
    topk: float
    hits: str  # per image, whether its top-1 is right, in the loader's order (`fgmodel.stats.pack_hits`)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device, k: int = 5, *, prepare: Prepare | None = None,
             pad_to: int | None = None) -> Evaluation:
    """Top-1 and top-k accuracy (fractions) over a loader of (images, labels, ...) batches, and the top-1 hits.

    One top-k per batch (k clipped to the class count, as `timm.utils.accuracy` does) gives
    both: an image's top-1 hit is its first column, its top-k hit any column. The hits stay
    on the device until the end (a confirmation compares configs image by image), so
    batches of any size weigh by their images and everything is read back once. `prepare`
    as in `TrainStep`; `pad_to`: see `pad_batch`.
    """
    model.eval()
    top1_hits: list[torch.Tensor] = []
    topk_hits: list[torch.Tensor] = []
    for images, labels, *_ in loader:
        images, labels = to_device(images, labels, device)
        images = _prepare(images, prepare)
        with autocast(device):
            logits = model(pad_batch(images, pad_to))[: len(labels)].float()
        right = logits.topk(min(k, logits.shape[1]), dim=1).indices == labels[:, None]
        top1_hits.append(right[:, 0])
        topk_hits.append(right.any(dim=1))
    if not top1_hits:
        raise ValueError("the evaluation set is empty")
    hits, topk = torch.cat(top1_hits).cpu().numpy(), int(torch.cat(topk_hits).sum())
    return Evaluation(int(hits.sum()) / len(hits), topk / len(hits), pack_hits(hits))

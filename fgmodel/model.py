"""The paper's model: a timm ConvNeXt(-V2) with a new head, dropout and SCRA blocks.

SCRA goes in through forward hooks on timm's stages (a hook that returns a value
replaces the stage's output), so the backbone stays timm's own module: its state-dict
keys match timm checkpoints, `forward_features` / `forward_intermediates` / grad
checkpointing keep working, and the SCRA parameters live only in `FGModel.scra`.
Dropout is timm's own `head.drop`, which sits right before `head.fc`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import timm
import torch
from timm.models import get_pretrained_cfg, load_state_dict
from timm.models.convnext import checkpoint_filter_fn
from torch import nn

from fgmodel.cli import one_line
from fgmodel.config import ConfigError, ModelConfig
from fgmodel.scra import SCRA

__all__ = ["DEMO_WEIGHTS", "FGModel", "PretrainedUnavailable", "build_model"]

DEMO_WEIGHTS = "demo"  # model.pretrained: the demo's own pretraining (fgmodel.pretrain_demo), per backbone
CLASSIFIER = "head.fc."  # the new linear layer: never in L2SP, loaded only if its shape fits
_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")
_HUB_PROBE_TIMEOUT_S = 3.0


class PretrainedUnavailable(FileNotFoundError):
    """Pretrained weights were asked for and cannot be had (no file, hub unreachable).

    A FileNotFoundError so the CLIs print it as one line; `pretrained_fallback` turns it
    into a warning and random init.
    """


class _ApplyAfter:
    """Forward hook returning ``block(output)``: the stage's output goes through SCRA.

    A class rather than a closure so `copy.deepcopy` / pickling of the model re-targets
    the hook at the copied block.
    """

    def __init__(self, block: nn.Module):
        self.block = block

    def __call__(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        return self.block(output)


class FGModel(nn.Module):
    """`backbone` (timm, head reset to `num_classes`) with `scra[str(stage)]` after stages.

    `l2sp_param_names` names (as in `named_parameters()`) the backbone parameters that
    came from pretrained weights; with no weights loaded it is every backbone parameter
    but the classifier, so L2SP still pulls toward the initial weights.
    """

    def __init__(self, backbone: nn.Module, scra: nn.ModuleDict, l2sp_param_names: list[str], pretrained: str):
        super().__init__()
        self.backbone = backbone
        self.scra = scra
        self.l2sp_param_names = l2sp_param_names
        self.pretrained = pretrained  # what was loaded: "none", "random (fallback)", a tag or a path ("demo": its path)
        self.num_classes: int = backbone.num_classes
        for stage, block in scra.items():
            backbone.stages[int(stage)].register_forward_hook(_ApplyAfter(block))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.backbone.forward_head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_model(cfg: ModelConfig, num_classes: int, *, device: str | torch.device = "cpu",
                data_root: str | Path | None = None) -> FGModel:
    """Build the model of `cfg` with a `num_classes` head on `device`.

    ``device="meta"`` allocates no weights and never loads any (FLOPs counting).
    ``cfg.pretrained == "demo"`` loads the demo's generated pretraining under `data_root`
    (`fgmodel.pretrain_demo`, built there on first use).
    Raises `ConfigError` for an unknown backbone, `PretrainedUnavailable` when weights
    cannot be had (unless `cfg.pretrained_fallback`), ValueError for a checkpoint that
    does not fit the backbone.
    """
    cfg.validate()
    if not timm.is_model(cfg.backbone):
        raise ConfigError("model.backbone", f"timm has no model {cfg.backbone!r}")
    if num_classes < 1:
        raise ConfigError("model.num_classes", f"must be >= 1, got {num_classes}")
    device = torch.device(device)
    kwargs = {"num_classes": num_classes, "drop_rate": cfg.dropout}

    if device.type == "meta":
        with torch.device("meta"):
            backbone = timm.create_model(cfg.backbone, **kwargs)
        loaded, source = None, "none"
    else:
        try:
            backbone, loaded, source = _create_pretrained(cfg, kwargs, data_root)
        except PretrainedUnavailable as exc:
            if not cfg.pretrained_fallback:
                raise
            warnings.warn(f"{exc}; falling back to random init (model.pretrained_fallback)", stacklevel=2)
            backbone = timm.create_model(cfg.backbone, **kwargs)
            loaded, source = None, "random (fallback)"

    scra_device = "meta" if device.type == "meta" else None
    scra = nn.ModuleDict({
        str(stage): SCRA(backbone.feature_info[stage]["num_chs"], cfg.scra_kernel, device=scra_device)
        for stage in sorted(cfg.scra_stages)
    })
    names = [n for n, _ in backbone.named_parameters()
             if not n.startswith(CLASSIFIER) and (loaded is None or n in loaded)]
    model = FGModel(backbone, scra, [f"backbone.{n}" for n in names], source)
    return model if device.type == "meta" else model.to(device)


def _create_pretrained(cfg: ModelConfig, kwargs: dict[str, Any],
                       data_root: str | Path | None) -> tuple[nn.Module, set[str] | None, str]:
    """The backbone with `cfg.pretrained` loaded, the names of the tensors loaded (None: none) and their source."""
    source = cfg.pretrained
    if source == "none":
        return timm.create_model(cfg.backbone, **kwargs), None, source
    if source == DEMO_WEIGHTS:
        if data_root is None:
            raise ConfigError("model.pretrained", "'demo' names weights made under the data root; none was given")
        from fgmodel import pretrain_demo  # torch, timm and the demo's renderer: only when asked for

        source = str(pretrain_demo.ensure(data_root, cfg.backbone))  # before create_model: the head's init
    if source.lower().endswith(_WEIGHT_SUFFIXES) or "/" in source or os.sep in source:
        backbone = timm.create_model(cfg.backbone, **kwargs)
        return backbone, _load_file(backbone, Path(source)), source
    backbone, loaded = _load_hub(cfg.backbone, source, kwargs)
    return backbone, loaded, source


def _load_hub(backbone_name: str, tag: str, kwargs: dict[str, Any]) -> tuple[nn.Module, set[str]]:
    """timm's own pretrained loading (it drops a classifier of another class count)."""
    arch = tag.partition(".")[0]
    if arch != backbone_name:
        raise ConfigError("model.pretrained", f"tag {tag!r} is for {arch}, not model.backbone {backbone_name}")
    try:
        get_pretrained_cfg(tag)
    except RuntimeError:
        known = ", ".join(timm.list_pretrained(f"{backbone_name}.*"))
        raise ConfigError("model.pretrained", f"timm has no pretrained tag {tag!r} (known: {known})") from None
    import huggingface_hub.constants as hub  # timm's own dependency

    offline = hub.is_offline_mode() or not _reachable(hub.ENDPOINT)
    try:
        with _hub_offline(offline):
            backbone = timm.create_model(tag, pretrained=True, **kwargs)
    except Exception as exc:  # the hub client raises OSError, httpx and RuntimeError subclasses
        why = ("the model hub is unreachable and they are not cached" if offline
               else f"{type(exc).__name__}: {one_line(exc)}")
        raise PretrainedUnavailable(f"model.pretrained: cannot get timm weights {tag!r} ({why}); give a local "
                                    ".safetensors/.pth file or set model.pretrained_fallback: true") from None
    return backbone, {n for n, _ in backbone.named_parameters() if not n.startswith(CLASSIFIER)}


@contextlib.contextmanager
def _hub_offline(offline: bool) -> Iterator[None]:
    """Put the hub client in offline mode (cache only) for the block when `offline`.

    Unreachable, the client retries for ~45 s before failing, while in offline mode it
    answers from its cache at once. timm passes no ``local_files_only`` through, and the
    client reads its mode from ``huggingface_hub.constants.HF_HUB_OFFLINE`` on each call
    (the ``HF_HUB_OFFLINE`` variable is read only at import), so the flag is set there.
    """
    import huggingface_hub.constants as hub

    before = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = before or offline
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = before


def _reachable(url: str) -> bool:
    """Can we open a TCP connection to the hub (or the proxy) in a few seconds?"""
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    parsed = urlparse(proxy or url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 443), timeout=_HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


def _load_file(backbone: nn.Module, path: Path) -> set[str]:
    """Load a local checkpoint into `backbone`; return the names of the tensors loaded.

    Reading is timm's `load_state_dict` (.safetensors or ``torch.load(weights_only=True)``,
    unwrapping ``state_dict_ema`` / ``model_ema`` / ``state_dict`` / ``model`` in timm's
    order, stripping ``module.``); by hand only what timm's loader does not: unwrapping an
    FGModel checkpoint (``backbone.``), keeping a head of another class count fresh, and
    naming what does not fit in one line.
    """
    if not path.is_file():
        raise PretrainedUnavailable(f"model.pretrained: weights file {path} not found")
    try:
        state = load_state_dict(str(path), use_ema=True, device="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file or a pickle holding more than tensors
        raise ValueError(f"model.pretrained: cannot read {path}: {type(exc).__name__}: {one_line(exc)}") from None
    state = _unwrap(state, path)
    try:
        state = checkpoint_filter_fn(state, backbone)  # remaps the original ConvNeXt(-V2) releases
    except KeyError as exc:
        raise ValueError(f"model.pretrained: {path} does not fit the backbone (unknown tensor {exc})") from None

    own = backbone.state_dict()
    for key, value in list(state.items()):
        if key not in own:
            del state[key]
        elif value.shape != own[key].shape:
            if not key.startswith("head."):
                raise ValueError(f"model.pretrained: {path} does not fit the backbone: {key} is "
                                 f"{tuple(value.shape)} there, {tuple(own[key].shape)} here")
            del state[key]  # a classifier for another class count stays freshly initialised
    missing = [k for k in own if k not in state and not k.startswith(CLASSIFIER)]
    if missing:
        raise ValueError(f"model.pretrained: {path} lacks {len(missing)} of the backbone's tensors "
                         f"(e.g. {missing[0]}); is it a checkpoint of this backbone?")
    backbone.load_state_dict(state, strict=False)
    return set(state)


def _unwrap(state: Any, path: Path) -> dict[str, torch.Tensor]:
    """The backbone's tensors: an FGModel state dict loses its ``backbone.`` prefix (and its SCRA)."""
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"model.pretrained: {path} holds no state dict of tensors")
    if any(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    return dict(state)

"""Transforms: shapes, uint8 output, no random op when p == 0; the device's normalisation with timm's stats."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from fgmodel._train_step import Normalize
from fgmodel.augment import build_transforms, eval_transform, input_stats, norm_stats, train_transform
from fgmodel.config import AugmentConfig, ConfigError, RunConfig, load_yaml
from fgmodel.data import collate

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
PAPER = AugmentConfig(hflip_p=0.25, rotation_deg=15.0, rotation_p=0.25, brightness=0.25, contrast=0.25,
                      saturation=0.25, hue=0.05, jitter_p=1.0)


def test_norm_stats_from_timm():
    assert norm_stats("convnextv2_atto") == IMAGENET
    assert norm_stats("convnextv2_large.fcmae_ft_in22k_in1k") == IMAGENET
    with pytest.raises(ConfigError, match="model.backbone"):
        norm_stats("convnextv2_nope")


def test_input_stats_follow_the_pretrained_tag_else_the_backbone():
    cfg = RunConfig().replace(**{"model.backbone": "convnextv2_atto"})
    assert input_stats(cfg) == IMAGENET
    assert input_stats(cfg.replace(**{"model.pretrained": "convnextv2_atto.fcmae_ft_in1k"})) == IMAGENET
    assert input_stats(cfg.replace(**{"model.pretrained": "/weights/atto.safetensors"})) == IMAGENET


def test_constant_image_stays_uint8_and_normalises_per_channel_on_the_device():
    rgb = (200, 100, 30)
    out = eval_transform(48)(Image.new("RGB", (90, 60), rgb))
    assert out.shape == (3, 48, 48) and out.dtype == torch.uint8
    assert [out[c].unique().tolist() for c in range(3)] == [[200], [100], [30]]
    normalised = Normalize(*IMAGENET, device="cpu")(out[None])
    assert normalised.dtype == torch.float32
    for c in range(3):
        expected = (rgb[c] / 255 - IMAGENET[0][c]) / IMAGENET[1][c]
        assert normalised[0, c].min().item() == pytest.approx(expected, abs=1e-5)
        assert normalised[0, c].max().item() == pytest.approx(expected, abs=1e-5)


def test_uint8_batches_normalised_on_the_device_equal_the_old_float_pipeline_bit_for_bit():
    """What the workers did before (ToDtype + Normalize per image) is what `Normalize` does per batch."""
    images = [Image.effect_noise((50, 40), 60 + 10 * i).convert("RGB") for i in range(3)]
    float_tf = v2.Compose([*eval_transform(32).transforms, v2.ToDtype(torch.float32, scale=True),
                           v2.Normalize(mean=list(IMAGENET[0]), std=list(IMAGENET[1]))])
    old = torch.stack([float_tf(im) for im in images])
    batch, _, _ = collate([(eval_transform(32)(im), 0, 0) for im in images])
    new = Normalize(*IMAGENET, device="cpu")(batch)
    assert new.is_contiguous(memory_format=torch.channels_last)  # the layout the model runs in
    assert torch.equal(new, old)
    with pytest.raises(TypeError, match="uint8"):
        Normalize(*IMAGENET, device="cpu")(old)


def test_no_augmentation_is_the_eval_pipeline():
    tf = train_transform(AugmentConfig(), 32)
    assert [type(t) for t in tf.transforms] == [v2.Resize, v2.ToImage]
    zero_p = AugmentConfig(rotation_deg=15.0, brightness=0.25, hue=0.05)  # ranges set, probabilities 0
    assert [type(t) for t in train_transform(zero_p, 32).transforms] == [type(t) for t in tf.transforms]
    image = Image.effect_noise((50, 40), 60).convert("RGB")
    assert torch.equal(tf(image), eval_transform(32)(image))


def test_paper_augmentation_pipeline():
    tf = train_transform(PAPER, 64)
    resize, flip, rotate, jitter, to_image = tf.transforms
    assert resize.size == [64, 64] and isinstance(to_image, v2.ToImage)
    assert isinstance(flip, v2.RandomHorizontalFlip) and flip.p == 0.25
    assert isinstance(rotate, v2.RandomApply) and rotate.p == 0.25
    assert rotate.transforms[0].degrees == [-15.0, 15.0]
    assert isinstance(jitter, v2.ColorJitter)  # jitter_p == 1: applied unwrapped
    assert jitter.brightness == jitter.contrast == jitter.saturation == (0.75, 1.25)
    assert jitter.hue == (-0.05, 0.05)
    torch.manual_seed(0)
    out = tf(Image.effect_noise((80, 50), 60).convert("RGB"))
    assert out.shape == (3, 64, 64) and out.dtype == torch.uint8


def test_flip_with_probability_one_mirrors_the_image():
    image = Image.new("RGB", (32, 32))
    image.paste((255, 255, 255), (0, 0, 16, 32))  # white left half
    flipped = train_transform(AugmentConfig(hflip_p=1.0), 32)(image)
    assert torch.equal(flipped, eval_transform(32)(image).flip(-1))


def test_build_transforms_uses_the_run_config():
    cfg = RunConfig().replace(**{"model.backbone": "convnextv2_atto", "data.image_size": 40})
    train_tf, eval_tf = build_transforms(cfg)
    image = Image.new("RGB", (70, 50), (10, 20, 30))
    assert train_tf(image).shape == eval_tf(image).shape == (3, 40, 40)
    paper_train, _ = build_transforms(load_yaml("paper_best"))
    random_ops = (v2.RandomHorizontalFlip, v2.RandomApply, v2.ColorJitter)
    assert sum(isinstance(t, random_ops) for t in paper_train.transforms) == 3

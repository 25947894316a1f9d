"""The CIFAR VGGs of the DRoP paper, by name: ``vgg16_bn_cifar`` and ``vgg19_bn_cifar``.

Vysogorets et al. (ICLR 2025) train VGG-16 on CIFAR-10 and VGG-19 on CIFAR-100 in the form the
CIFAR literature uses, as their code builds it: 3x3 convolutions without bias, each followed by
batch norm (momentum 0.01) and ReLU, then, on the 1x1 map a 32x32 image leaves after five
poolings, a single linear layer from the 512 channels to the classes; Xavier-normal weights
(gain sqrt 2), zero biases.
timm's own ``vgg16_bn`` is the ImageNet network, whose head is a 7x7 ``ConvMlp`` of 4,096
channels (about 120M more parameters, and a 1x1 map padded to 7x7): another model.

Importing this module registers both names with timm, so every model option (``ProbeConfig``,
``TrainConfig``, ``hf-drop probe --model``) takes them; :func:`hf_drop.modeling.build_model`
imports it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import timm
from timm.layers import ClassifierHead
from timm.models import build_model_with_cfg, register_model
from timm.models.vgg import VGG, cfgs
from torch import nn

__all__ = ["CIFAR_VGGS"]

CIFAR_VGGS = ("vgg16_bn_cifar", "vgg19_bn_cifar")


def _cifar_vgg(depth: str, pretrained: bool, **kwargs: Any) -> VGG:
    if pretrained:
        raise ValueError(f"vgg{depth}_bn_cifar has no pretrained weights: train it from scratch")
    num_classes = kwargs.pop("num_classes", 10)
    drop_rate = kwargs.pop("drop_rate", 0.0)
    for unused in ("pretrained_cfg", "pretrained_cfg_overlay"):  # there are no weights to load
        kwargs.pop(unused, None)
    model = build_model_with_cfg(
        VGG,
        f"vgg{depth}_bn_cifar",
        pretrained=False,
        model_cfg=cfgs[f"vgg{depth}"],
        conv_layer=functools.partial(nn.Conv2d, bias=False),
        norm_layer=functools.partial(nn.BatchNorm2d, momentum=0.01),
        num_classes=num_classes,
        drop_rate=drop_rate,
        pretrained_cfg={"num_classes": num_classes, "input_size": (3, 32, 32)},
        **kwargs,
    )
    # The CIFAR head: no ConvMlp; global pooling of the 512 channels, then one linear layer.
    model.pre_logits = nn.Identity()
    model.head = ClassifierHead(model.num_features, num_classes, drop_rate=drop_rate)
    model.head_hidden_size = model.num_features
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_normal_(module.weight, gain=math.sqrt(2))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


# Registered once: timm warns when a name is registered twice (a module reloaded in tests).
if "vgg16_bn_cifar" not in timm.list_models("vgg*_cifar"):

    @register_model
    def vgg16_bn_cifar(pretrained: bool = False, **kwargs: Any) -> VGG:
        """VGG-16 with batch norm and a linear head: the DRoP paper's CIFAR-10 model."""
        return _cifar_vgg("16", pretrained, **kwargs)

    @register_model
    def vgg19_bn_cifar(pretrained: bool = False, **kwargs: Any) -> VGG:
        """VGG-19 with batch norm and a linear head: the DRoP paper's CIFAR-100 model."""
        return _cifar_vgg("19", pretrained, **kwargs)

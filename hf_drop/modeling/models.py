"""Probe models by name: a timm architecture, a Hub checkpoint, or a local transformers folder.

Whatever the source, the result is an :class:`ImageClassifier`: ``forward(pixel_values)`` returns
logits, and ``head`` is its final linear layer (whose input is the penultimate embedding, used for
last-layer GraNd and k-center coresets).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io.extras import require

__all__ = [
    "ImageClassifier",
    "Preprocess",
    "build_model",
    "find_head",
    "preprocess_for",
]

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


@dataclass(frozen=True)
class Preprocess:
    """How images become model inputs: channels, size (None: keep the native size), normalisation."""

    channels: int
    image_size: tuple[int, int] | None = None
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    interpolation: str = "bilinear"
    source: str = "default"

    def __post_init__(self) -> None:
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) == 1:  # broadcast a single value to every channel
                object.__setattr__(self, name, tuple(value) * self.channels)


@dataclass
class ModelSpec:
    """What a model name resolved to, for the provenance record."""

    name: str
    kind: str  # "timm" | "transformers"
    pretrained: bool
    kwargs: dict[str, Any] = field(default_factory=dict)


class ImageClassifier(nn.Module):
    """A timm or transformers image classifier with one interface: pixels in, logits out."""

    def __init__(self, model: nn.Module, kind: str, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.kind = kind
        head = find_head(model, num_classes)
        # Kept by path, not as an attribute: a second reference would register the head twice
        # and make checkpoints see shared tensors.
        self._head_path = next(f"model.{n}" for n, m in model.named_modules() if m is head)

    @property
    def head(self) -> nn.Linear:
        """The final linear layer; its input is the penultimate embedding."""
        return self.get_submodule(self._head_path)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if self.kind == "timm":
            return self.model(pixel_values)
        return self.model(pixel_values=pixel_values).logits


def build_model(
    name: str,
    num_classes: int,
    image_channels: int,
    *,
    pretrained: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    class_names: list[str] | None = None,
    as_transformers: bool = False,
    image_size: tuple[int, int] | None = None,
) -> tuple[ImageClassifier, Preprocess, ModelSpec]:
    """Resolve ``name`` and build a classifier for ``num_classes`` classes.

    ``image_size`` ``(height, width)``: images are resized to it, in place of the size the
    model's preprocessing would choose (a checkpoint's image processor, a pretrained timm data
    config; a model from scratch keeps each image's own size).

    ``as_transformers`` wraps a timm model in ``TimmWrapperForImageClassification`` so that
    ``classifier.model`` is a ``PreTrainedModel`` for ``transformers.Trainer``.

    Tried in order: a local folder saved with ``save_pretrained`` (transformers; built from its
    config alone when it holds no weights), a timm architecture name (built from scratch unless
    ``pretrained``; ``in_chans`` follows the data), then a Hub checkpoint id (``org/name``, through
    ``AutoModelForImageClassification``; timm repos load as ``TimmWrapperForImageClassification``).
    """
    classifier, preprocess, spec = _build_model(
        name, num_classes, image_channels, pretrained, model_kwargs, class_names, as_transformers
    )
    if image_size is not None:
        preprocess = replace(
            preprocess, image_size=image_size, source=f"{preprocess.source}; size given"
        )
    return classifier, preprocess, spec


def _build_model(
    name: str,
    num_classes: int,
    image_channels: int,
    pretrained: bool,
    model_kwargs: dict[str, Any] | None,
    class_names: list[str] | None,
    as_transformers: bool,
) -> tuple[ImageClassifier, Preprocess, ModelSpec]:
    require("timm", "probe", "build_model")
    import timm

    from . import cifar  # noqa: F401  (registers the paper's CIFAR VGGs with timm)

    kwargs = dict(model_kwargs or {})
    tried = []
    path = Path(name)
    if path.is_dir():
        if (path / "config.json").exists():
            return _transformers(
                str(path),
                num_classes,
                image_channels,
                class_names,
                kwargs,
                from_weights=any((path / f).exists() for f in _WEIGHT_FILES),
            )
        tried.append(f"local folder {name!r} has no config.json")
    else:
        tried.append("not a local folder")

    if timm.is_model(name):
        # Pretrained weights expect RGB; a model from scratch takes the data's own channels.
        channels = 3 if pretrained else image_channels
        model = timm.create_model(
            name, pretrained=pretrained, num_classes=num_classes, in_chans=channels, **kwargs
        )
        preprocess = _timm_preprocess(model.pretrained_cfg, pretrained, channels)
        spec = ModelSpec(name, "timm", pretrained, kwargs)
        if as_transformers:
            wrapper = _timm_wrapper(name, model, channels, num_classes, class_names, kwargs)
            return ImageClassifier(wrapper, "transformers", num_classes), preprocess, spec
        return ImageClassifier(model, "timm", num_classes), preprocess, spec
    tried.append("not a timm architecture (see timm.list_models())")

    if "/" in name and not path.exists():
        try:
            return _transformers(name, num_classes, image_channels, class_names, kwargs, True)
        except Exception as error:  # offline, missing repo, not an image classifier, ...
            tried.append(f"loading Hub checkpoint {name!r} failed: {error}")
    else:
        tried.append("not a Hub checkpoint id (org/name)")
    raise ValueError(f"unknown model {name!r}: " + "; ".join(tried))


def _timm_wrapper(
    name: str,
    model: nn.Module,
    channels: int,
    num_classes: int,
    class_names: list[str] | None,
    kwargs: dict[str, Any],
) -> nn.Module:
    """``model`` inside a ``TimmWrapperForImageClassification`` (what transformers uses for timm)."""
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification

    config = TimmWrapperConfig(
        architecture=name,
        model_args={"in_chans": channels, **kwargs},
        **_label_config(num_classes, class_names),
    )
    wrapper = TimmWrapperForImageClassification(config)
    wrapper.timm_model = model  # the same architecture, with the weights already chosen
    return wrapper


def _label_config(num_classes: int, class_names: list[str] | None) -> dict[str, Any]:
    names = class_names or [str(k) for k in range(num_classes)]
    return {
        "num_labels": num_classes,
        "id2label": dict(enumerate(names)),
        "label2id": {n: k for k, n in enumerate(names)},
    }


def _transformers(
    name: str,
    num_classes: int,
    image_channels: int,
    class_names: list[str] | None,
    kwargs: dict[str, Any],
    from_weights: bool,
) -> tuple[ImageClassifier, Preprocess, ModelSpec]:
    from transformers import AutoConfig, AutoModelForImageClassification

    labels = _label_config(num_classes, class_names)
    if from_weights:
        model = AutoModelForImageClassification.from_pretrained(
            name, ignore_mismatched_sizes=True, **labels, **kwargs
        )
    else:
        config = AutoConfig.from_pretrained(name, **labels, **kwargs)
        model = AutoModelForImageClassification.from_config(config)
    preprocess = _checkpoint_preprocess(name, model.config)
    spec = ModelSpec(name, "transformers", from_weights, kwargs)
    return ImageClassifier(model, "transformers", num_classes), preprocess, spec


def preprocess_for(
    model_or_name: str | nn.Module,
    *,
    channels: int | None = None,
    pretrained: bool = False,
) -> Preprocess:
    """How images become inputs of a model, by :func:`build_model`'s rules, without building it.

    ``model_or_name`` is a name as :func:`build_model` takes it, or a model: an
    :class:`ImageClassifier`, a transformers model, or a timm model. A transformers checkpoint
    (a folder, a Hub id, or a model loaded from one) brings its image processor's size and
    normalisation; a timm architecture its data config if ``pretrained``, else the images' own
    size and mean = std = 0.5. ``channels`` goes with a name, as ``build_model``'s
    ``image_channels``: the images' channels (1 for grayscale; default 3), which a timm model from
    scratch is built for; pretrained and transformers models take their own (images are
    converted). A built model already fixes its channels: ``channels`` with a model is an error.
    """
    require("timm", "probe", "preprocess_for")
    import timm

    if channels is not None and channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if channels is not None and not isinstance(model_or_name, str | Path):
        raise ValueError(
            "channels goes with a model name only (as build_model's image_channels): a built "
            f"model ({type(model_or_name).__name__}) already fixes the channels it takes"
        )
    if isinstance(model_or_name, ImageClassifier):
        model_or_name = model_or_name.model
    if isinstance(model_or_name, str | Path):
        name = str(model_or_name)
        if Path(name).is_dir() and (Path(name) / "config.json").exists():
            preprocess = _checkpoint_preprocess(name)
        elif timm.is_model(name):
            cfg = timm.models.get_pretrained_cfg(name)
            pretrained_cfg = cfg.to_dict() if cfg is not None else {}
            preprocess = _timm_preprocess(pretrained_cfg, pretrained, channels or 3)
        elif "/" in name and not Path(name).exists():
            preprocess = _checkpoint_preprocess(name)
        else:
            raise ValueError(
                f"unknown model {name!r}: not a local save_pretrained folder, a timm architecture "
                "(see timm.list_models()) or a Hub checkpoint id (org/name)"
            )
    elif isinstance(model_or_name, nn.Module):
        preprocess = _module_preprocess(model_or_name, pretrained)
    else:
        raise TypeError(
            "model_or_name must be a model name, an ImageClassifier, a transformers or a timm "
            f"model, got {type(model_or_name).__name__}"
        )
    return preprocess


def _module_preprocess(model: nn.Module, pretrained: bool) -> Preprocess:
    """:func:`preprocess_for` of a built model: its checkpoint's, else its timm architecture's."""
    config = getattr(model, "config", None)
    checkpoint = getattr(config, "name_or_path", "") if config is not None else ""
    if checkpoint:  # loaded from a checkpoint (what _transformers builds)
        return _checkpoint_preprocess(checkpoint, config)
    timm_model = getattr(model, "timm_model", None)  # TimmWrapperForImageClassification
    timm_model = timm_model if timm_model is not None else model
    pretrained_cfg = getattr(timm_model, "pretrained_cfg", None)
    if pretrained_cfg is not None:  # a timm model, or one wrapped by build_model
        return _timm_preprocess(pretrained_cfg, pretrained, _input_channels(timm_model))
    if config is not None:  # a transformers model built from a config alone
        return Preprocess(channels=int(getattr(config, "num_channels", 3) or 3))
    raise TypeError(
        f"{type(model).__name__} is neither a transformers nor a timm model: pass its name, "
        "or a Preprocess"
    )


def _input_channels(model: nn.Module) -> int:
    """The input channels of a timm model: those of its first convolution (3 if it has none)."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return int(first.in_channels) if first is not None else 3


def _timm_preprocess(pretrained_cfg: dict[str, Any], pretrained: bool, channels: int) -> Preprocess:
    """Pretrained: the size, normalisation and interpolation of the timm data config (RGB); from
    scratch: the images' own size and channels, mean = std = 0.5."""
    require("timm", "probe", "a timm model's preprocessing")
    import timm

    if not pretrained:
        return Preprocess(channels=channels)
    # in_chans=3 is timm's default; non-empty args let a model without a config take defaults.
    config = timm.data.resolve_data_config({"in_chans": 3}, pretrained_cfg=dict(pretrained_cfg))
    return Preprocess(
        channels=3,
        image_size=tuple(config["input_size"][1:]),
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
        interpolation=config.get("interpolation", "bilinear"),
        source="timm data config",
    )


def _checkpoint_preprocess(name: str, config: Any = None) -> Preprocess:
    """A transformers checkpoint's image processor, else the default for its channels."""
    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(name)
    channels = int(getattr(config, "num_channels", 3) or 3)
    return _processor_preprocess(name, channels) or Preprocess(channels=channels)


def _processor_preprocess(name: str, channels: int) -> Preprocess | None:
    """Size and normalisation from the checkpoint's image processor, if it has one."""
    from transformers import AutoImageProcessor

    try:
        processor = AutoImageProcessor.from_pretrained(name)
    except Exception:  # no preprocessor_config.json: the caller falls back to the default
        return None
    size = getattr(processor, "size", None) or {}
    if "height" in size:
        image_size = (size["height"], size["width"])
    elif "shortest_edge" in size:
        image_size = (size["shortest_edge"], size["shortest_edge"])
    else:
        image_size = None
    mean = getattr(processor, "image_mean", None) or (0.5,)
    std = getattr(processor, "image_std", None) or (0.5,)
    return Preprocess(channels, image_size, tuple(mean), tuple(std), source="image processor")


def find_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """The final linear layer: timm's classifier, else the last Linear with num_classes outputs."""
    getter = getattr(model, "get_classifier", None) or getattr(
        getattr(model, "timm_model", None), "get_classifier", None
    )
    head = getter() if getter else None
    if not isinstance(head, nn.Linear):
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        matching = [m for m in linears if m.out_features == num_classes]
        head = matching[-1] if matching else None
    if head is None:
        raise ValueError(
            f"{type(model).__name__} has no final nn.Linear with {num_classes} outputs: the probe "
            "needs one for last-layer GraNd and embeddings"
        )
    return head

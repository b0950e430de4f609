"""The FBNet and ProxylessNAS mobile spaces as data (DESIGN.md §8), plus small settings for CPU-sized data.

``imagenet`` and (FBNet) ``cifar`` are the published layouts exactly; ``small`` (and ProxylessNAS ``cifar``)
are ours: the same candidates and stage pattern, narrower and shallower, so a search on the embedded 16x16
digits finishes in minutes on two CPU cores. Retraining recipes are marked "ours" where the paper's full
recipe is not at hand: a MobileNetV2-style SGD + cosine recipe.
"""

from __future__ import annotations

from .layout import Layout, Stage
from .space import LayerwiseDefinition, LayerwiseSpace

# ours: MobileNetV2-style ImageNet recipe (SGD momentum 0.9, cosine, label smoothing 0.1, wd 4e-5)
_IMAGENET_RECIPE = {"epochs": 300, "batch_size": 256, "lr": 0.1, "lr_schedule": "cosine", "weight_decay": 4e-5,
                    "cutout": 0, "label_smoothing": 0.1, "auxiliary": False}
# ours: CIFAR-style recipe for small inputs (cosine, cutout 16 as DARTS' CIFAR recipe, wd 5e-4 for narrow nets)
_SMALL_RECIPE = {"epochs": 200, "batch_size": 96, "lr": 0.05, "lr_schedule": "cosine", "weight_decay": 5e-4,
                 "cutout": 16, "label_smoothing": 0.0, "auxiliary": False}


def _stages(widths: list[int], layers: list[int], strides: list[int]) -> tuple[Stage, ...]:
    return tuple(Stage(w, n, s) for w, n, s in zip(widths, layers, strides, strict=True))


# FBNet (HW-NAS-Bench / HELP `fbnet_models`): 22 layers, stages [1,4,4,4,4,4,1], 9 candidates (ints 0..8).
FBNET_CANDIDATES = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
_FBNET_WIDTHS = [16, 24, 32, 64, 112, 184, 352]
_FBNET_LAYERS = [1, 4, 4, 4, 4, 4, 1]
FBNET = LayerwiseDefinition(
    name="fbnet",
    description="FBNet space: 22 MBConv layers, 9 candidates per layer (k3/k5 x e1/e3/e6, grouped e1, skip), ReLU",
    candidates=FBNET_CANDIDATES,
    act="relu",
    identity_ops=("skip",),
    identity_anywhere=True,
    default_setting="cifar",
    search_setting="small",
    layouts={
        "imagenet": Layout("imagenet", "FBNet ImageNet network: 224x224, stem 3x3/2 16 ch, head 1984",
                           stem_width=16, stem_stride=2,
                           stages=_stages(_FBNET_WIDTHS, _FBNET_LAYERS, [1, 2, 2, 2, 1, 2, 1]),
                           head_width=1984, input_size=224, mac_budget=600e6, train_reference=_IMAGENET_RECIPE,
                           table_input_size=224),
        "cifar": Layout("cifar", "FBNet CIFAR network (HW-NAS-Bench): stem 3x3/1 16 ch, head 1504, dataset size",
                        stem_width=16, stem_stride=1,
                        stages=_stages(_FBNET_WIDTHS, _FBNET_LAYERS, [1, 1, 2, 2, 1, 2, 1]),
                        head_width=1504, train_reference=_SMALL_RECIPE, table_input_size=32,
                        table_num_classes=100),  # HW-NAS-Bench / HELP measured it on CIFAR-100
        "small": Layout("small", "ours: FBNet pattern at 1/2 width, 12 layers, head 256 (CPU-sized data)",
                        stem_width=8, stem_stride=1,
                        stages=_stages([8, 12, 16, 32, 56, 96, 176], [1, 2, 2, 2, 2, 2, 1], [1, 1, 2, 2, 1, 2, 1]),
                        head_width=256, train_reference=_SMALL_RECIPE, table_input_size=16),
    },
    expand_conv=True,
    references={  # facebookresearch/mobile-vision fbnet_modeldef_cls_fbnet.py (ImageNet layout, 22 layers)
        "fbnet_a": ("skip", "k3_e3", "k3_e1", "skip", "skip", "k5_e6", "k3_e3", "k5_e1", "k3_e3", "k5_e6", "k5_e3",
                    "k5_e1_g2", "k5_e6", "k3_e6", "k5_e1_g2", "k5_e1", "k3_e1_g2", "k5_e6", "k5_e6", "k5_e3", "k5_e6",
                    "k5_e6"),
        "fbnet_b": ("k3_e1", "k3_e6", "k5_e1", "k3_e1", "k3_e1", "k5_e6", "k5_e3", "k3_e6", "k5_e6", "k5_e6", "k5_e1",
                    "skip", "k5_e3", "k5_e6", "k3_e1", "k5_e1", "k5_e3", "k5_e6", "k5_e1", "k5_e6", "k5_e6", "k3_e6"),
        "fbnet_c": ("k3_e1", "k3_e6", "skip", "k3_e1", "k3_e1", "k5_e6", "k5_e3", "k5_e6", "k3_e6", "k5_e6", "k5_e3",
                    "k5_e6", "k5_e6", "k5_e6", "k5_e6", "k5_e6", "k5_e3", "k5_e6", "k5_e6", "k5_e6", "k5_e6", "k3_e6"),
    },
)

# ProxylessNAS mobile (mit-han-lab/proxylessnas super_proxyless.py): stem 3x3/2 32 ReLU6, fixed MB1 3x3 -> 16,
# 21 searchable layers, {3,5,7} x {3,6} MBConv + zero where stride 1 and widths match, head 1280.
PROXYLESS_CANDIDATES = ("k3_e3", "k3_e6", "k5_e3", "k5_e6", "k7_e3", "k7_e6", "zero")
_PROXYLESS_WIDTHS = [24, 40, 80, 96, 192, 320]
_PROXYLESS_LAYERS = [4, 4, 4, 4, 4, 1]
PROXYLESS = LayerwiseDefinition(
    name="proxyless",
    description="ProxylessNAS mobile space: 21 MBConv layers, {3,5,7}x{3,6} + zero where shapes agree, ReLU6",
    candidates=PROXYLESS_CANDIDATES,
    act="relu6",
    identity_ops=("zero",),
    identity_anywhere=False,
    default_setting="cifar",
    search_setting="small",
    layouts={
        "imagenet": Layout("imagenet", "ProxylessNAS mobile ImageNet network: 224x224, stem 32/2, MB1 16, head 1280",
                           stem_width=32, stem_stride=2, first=("k3_e1", 16),
                           stages=_stages(_PROXYLESS_WIDTHS, _PROXYLESS_LAYERS, [2, 2, 2, 1, 2, 1]),
                           head_width=1280, input_size=224, mac_budget=600e6, train_reference=_IMAGENET_RECIPE,
                           table_input_size=224),
        "cifar": Layout("cifar", "ours: ProxylessNAS layout with a stride-1 stem and first stage for 32x32 inputs",
                        stem_width=32, stem_stride=1, first=("k3_e1", 16),
                        stages=_stages(_PROXYLESS_WIDTHS, _PROXYLESS_LAYERS, [1, 2, 2, 1, 2, 1]),
                        head_width=1280, train_reference=_SMALL_RECIPE, table_input_size=32),
        "small": Layout("small", "ours: ProxylessNAS pattern at 1/2 width, 9 layers, head 256 (CPU-sized data)",
                        stem_width=16, stem_stride=1, first=("k3_e1", 8),
                        stages=_stages([12, 16, 32, 48, 96, 160], [2, 2, 2, 1, 1, 1], [1, 2, 2, 1, 2, 1]),
                        head_width=256, train_reference=_SMALL_RECIPE, table_input_size=16),
    },
    expand_conv=True,
)

# DNA student space (changlin31/DNA student_supernet.py): stem 3x3/2 32 + swish, MB1 3x3 -> 16, six blocks
# [hidden, out, stride, layers], 6 candidates MB{3,6}_k{3,5,7} with SE 0.25 and swish, no skip, head 1280.
# Each block's last layer outputs its teacher stage's width (EfficientNet-B7's on ImageNet); a search with another
# teacher replaces the stages by the teacher's (methods/dna), the stem and head stay the setting's.
DNA_CANDIDATES = ("k3_e3_se", "k5_e3_se", "k7_e3_se", "k3_e6_se", "k5_e6_se", "k7_e6_se")
DNA = LayerwiseDefinition(
    name="dna",
    description="DNA student space: MBConv blocks of MB{3,6}_k{3,5,7} + SE + swish, widths and strides of a teacher",
    candidates=DNA_CANDIDATES,
    act="swish",
    identity_ops=(),
    identity_anywhere=False,
    default_setting="cifar",
    search_setting="small",
    layouts={
        "imagenet": Layout("imagenet", "DNA ImageNet student: 224x224, stem 32/2, MB1 16, six blocks to the "
                           "EfficientNet-B7 stage widths, head 1280",
                           stem_width=32, stem_stride=2, first=("k3_e1_se", 16),
                           stages=(Stage(24, 2, 2, 48), Stage(40, 4, 2, 80), Stage(80, 4, 2, 160),
                                   Stage(112, 4, 1, 224), Stage(192, 4, 2, 384), Stage(320, 1, 1, 640)),
                           head_width=1280, input_size=224, mac_budget=600e6, train_reference=_IMAGENET_RECIPE,
                           table_input_size=224),
        "cifar": Layout("cifar", "ours: the DNA block pattern at EfficientNet-B0 widths, stride-1 stem for 32x32",
                        stem_width=32, stem_stride=1, first=("k3_e1_se", 16),
                        stages=_stages([24, 40, 80, 112, 192, 320], [2, 4, 4, 4, 4, 1], [1, 2, 2, 1, 2, 1]),
                        head_width=1280, train_reference=_SMALL_RECIPE, table_input_size=32),
        "small": Layout("small", "ours: the DNA block pattern, narrow, 10 layers, head 256 (CPU-sized data)",
                        stem_width=16, stem_stride=1, first=("k3_e1_se", 8),
                        stages=_stages([12, 16, 32, 48, 64, 96], [1, 2, 2, 2, 2, 1], [1, 2, 2, 1, 2, 1]),
                        head_width=256, train_reference=_SMALL_RECIPE, table_input_size=16),
    },
    expand_conv=True,
)

MBCONV_SPACES = (LayerwiseSpace(FBNET), LayerwiseSpace(PROXYLESS), LayerwiseSpace(DNA))

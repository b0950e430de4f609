"""Discrete networks built from a genotype, their settings and complexity counts."""

from __future__ import annotations

from .builder import SETTINGS, NetworkSetting, build_network, get_setting, resolve_input_size
from .darts_net import AuxiliaryHeadCIFAR, AuxiliaryHeadImageNet, Cell, NetworkCIFAR, NetworkMobile

__all__ = [
    "SETTINGS", "NetworkSetting", "build_network", "get_setting", "resolve_input_size", "AuxiliaryHeadCIFAR",
    "AuxiliaryHeadImageNet", "Cell", "NetworkCIFAR", "NetworkMobile",
]

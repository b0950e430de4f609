"""Retraining of derived networks (``sdnas train``): config, trainer, and self-describing weights."""

from __future__ import annotations

from .config import TrainConfig, load_train_config, resolve
from .trainer import run_training
from .weights import NetworkMeta, load_network, read_weights, save_weights

__all__ = [
    "TrainConfig", "load_train_config", "resolve", "run_training",
    "NetworkMeta", "load_network", "read_weights", "save_weights",
]

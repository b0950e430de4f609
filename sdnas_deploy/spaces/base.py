"""The Space protocol: everything a command needs to know about one search space (docs/ARCHITECTURE.md).

A space is one folder under ``spaces/`` holding a :class:`Space` subclass registered in ``spaces.SPACES``.
Nothing outside that folder names the space's ops or shapes: search methods, latency tables, training,
export and the CLI go through these methods only. What a space provides:

- **architecture codec**: the discrete architecture as a small JSON object that always carries
  ``"space": NAME`` (:meth:`Space.arch_to_dict` / :meth:`Space.arch_from_dict`, strict, one-line errors), a
  one-line arch string, published reference architectures, random sampling, a short summary (skip counts...);
- **search**: a supernet with a differentiable relaxation (labelled α tensors, :class:`Supernet`), derive
  (best candidate per decision) and discretize (one-hot weights in α's layout, fed back to the supernet);
- **deployment**: settings (input size, channels, classes, reference retraining recipe), a geometry per
  setting and the discrete network of an architecture at a geometry;
- **latency-table adapter**: the keys a network uses, the candidate keys of a geometry, one key's operator
  built alone, FLOPs per key (through :meth:`build_op`) and the expected cost under the architecture
  distribution (a :class:`CostModel`, differentiable in α).
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

import torch
from torch import nn

from ..errors import BadInputError
from ..io_utils import atomic_write_json
from ..registry import suggest

SPACE_FIELD = "space"
RELAXATIONS = ("softmax", "gumbel")
# Upper bounds of a geometry's sizes: anything larger is a typo or a crafted file, refused before a tensor is built
MAX_SIZES = {"input_size": 4096, "in_channels": 64, "num_classes": 100_000, "layers": 1000, "channels": 4096}


def check_geometry_sizes(geometry: Any, names: tuple[str, ...]) -> None:
    """Each of ``names`` a positive integer within :data:`MAX_SIZES` (one line naming the first that is not)."""
    for name in names:
        value = getattr(geometry, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BadInputError(f"geometry {name} must be a positive integer, got {value!r}")
        if value > MAX_SIZES[name]:
            raise BadInputError(f"geometry {name}={value} is larger than {MAX_SIZES[name]}; check the value")


@dataclass(frozen=True)
class Setting:
    """A deployment setting of a space: defaults, budget and the reference retraining recipe.

    ``input_size`` None means "the dataset's own image size"; ``train_reference`` fills every
    ``TrainConfig`` field a recipe leaves unset (each value's source is written beside it in the space).
    """

    name: str
    description: str
    input_size: int | None = None
    mac_budget: float | None = None
    train_reference: Mapping[str, Any] = field(default_factory=dict)
    auxiliary: bool = False  # whether the network has an auxiliary head for training
    table_input_size: int = 32  # input side a latency table uses when the setting takes the dataset's size
    table_num_classes: int | None = None  # classes of the setting's table network (None: 1000 at 224 px, else 10)


@runtime_checkable
class Geometry(Protocol):
    """One deployment network's sizes: a frozen, hashable dataclass with at least these fields."""

    setting: str
    input_size: int
    in_channels: int
    num_classes: int

    def to_dict(self) -> dict[str, Any]: ...


def input_shape(geometry: Geometry, batch: int = 1) -> tuple[int, int, int, int]:
    """NCHW shape of a batch of inputs of ``geometry``."""
    return (batch, geometry.in_channels, geometry.input_size, geometry.input_size)


class CostModel(Protocol):
    """Expected cost (ms or MMAC) of the network the supernet will discretize to, differentiable in α."""

    unit: str
    fixed: float

    def expected(self, alphas: Mapping[str, torch.Tensor]) -> torch.Tensor: ...


class Supernet(nn.Module):
    """Base of every space's supernet: labelled α tensors, the relaxation and the weight/α split.

    Subclasses register their α as ``nn.Parameter`` attributes ``alphas_<label>`` for each label of
    ``ARCH_LABELS`` (they travel in the state dict and checkpoints), implement :meth:`forward` (``weights`` replaces the relaxed α per label:
    one-hot masks evaluate the derived architecture with the supernet's weights) and :meth:`derive`.
    ``relax`` is ``softmax`` (DARTS) or ``gumbel`` (FBNet: Gumbel-softmax samples at ``temperature`` while
    training, softmax at eval).
    """

    ARCH_LABELS: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.relax = "softmax"
        self.temperature = 1.0
        self.init_args: dict[str, Any] = {}

    def alpha(self, label: str) -> nn.Parameter:
        """The α tensor of ``label``."""
        return getattr(self, f"alphas_{label}")

    def arch_parameters(self) -> list[nn.Parameter]:
        """The α tensors in ``ARCH_LABELS`` order, then any per-edge ``betas_<label>`` (PC-DARTS edge
        normalization, spaces.partial) — all architecture parameters, for the architecture optimizer. Cost
        models read the labelled α only (the first ``len(ARCH_LABELS)``)."""
        alphas = [self.alpha(label) for label in self.ARCH_LABELS]
        betas = [getattr(self, f"betas_{label}") for label in self.ARCH_LABELS if hasattr(self, f"betas_{label}")]
        return [*alphas, *betas]

    def arch_labels(self) -> tuple[str, ...]:
        return self.ARCH_LABELS

    def named_alphas(self) -> dict[str, nn.Parameter]:
        """label → α tensor."""
        return {label: self.alpha(label) for label in self.ARCH_LABELS}

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except α (for the weight optimizer)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def choice_mask(self, label: str) -> torch.Tensor | None:
        """Boolean mask of allowed choices for ``label`` (None: all allowed)."""
        return None

    def _masked(self, label: str, alpha: torch.Tensor | None = None) -> torch.Tensor:
        """α of ``label`` with its disallowed choices at -inf (so any softmax gives them probability 0)."""
        alpha = self.alpha(label) if alpha is None else alpha
        mask = self.choice_mask(label)
        return alpha if mask is None else alpha.masked_fill(~mask.to(alpha.device), float("-inf"))

    def probabilities(self, label: str, alpha: torch.Tensor | None = None) -> torch.Tensor:
        """softmax(α) over the allowed choices of ``label`` (disallowed choices get probability 0)."""
        return torch.softmax(self._masked(label, alpha), dim=-1)

    def relaxed(self, label: str) -> torch.Tensor:
        """The mixture weights the forward pass uses: softmax(α), or Gumbel-softmax samples while training."""
        if self.relax == "gumbel" and self.training:
            return nn.functional.gumbel_softmax(self._masked(label), tau=self.temperature, hard=False, dim=-1)
        return self.probabilities(label)

    def mixture(self, weights: Mapping[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        """Per label the weights to use: explicit ``weights`` where given (shape-checked), else :meth:`relaxed`."""
        out: dict[str, torch.Tensor] = {}
        weights = weights or {}
        unknown = sorted(set(weights) - set(self.ARCH_LABELS))
        if unknown:
            raise ValueError(f"unknown architecture label {unknown[0]!r}; labels are {', '.join(self.ARCH_LABELS)}")
        for label in self.ARCH_LABELS:
            if label in weights:
                expected = tuple(self.alpha(label).shape)
                if tuple(weights[label].shape) != expected:
                    raise ValueError(f"weights[{label!r}] has shape {tuple(weights[label].shape)}; expected {expected}")
                out[label] = weights[label]
            else:
                out[label] = self.relaxed(label)
        return out

    def probabilities_all(self) -> dict[str, torch.Tensor]:
        """label → softmax(α) (what derive ranks and alpha_history records)."""
        return {label: self.probabilities(label) for label in self.ARCH_LABELS}

    def new(self) -> "Supernet":
        """A fresh supernet with the same constructor args and a copy of the current α (same device)."""
        fresh = type(self)(**self.init_args).to(self.arch_parameters()[0].device)
        fresh.relax, fresh.temperature = self.relax, self.temperature
        with torch.no_grad():
            for mine, theirs in zip(fresh.arch_parameters(), self.arch_parameters()):
                mine.copy_(theirs)
        return fresh

    def derive(self) -> Any:
        """The discrete architecture the current α select."""
        raise NotImplementedError

    def genotype(self) -> Any:
        """Alias of :meth:`derive` (the DARTS name)."""
        return self.derive()


class Space(ABC):
    """One search space (module docstring). Subclasses set the class attributes and implement the methods."""

    name: str = ""
    description: str = ""
    settings: Mapping[str, Setting] = {}
    default_setting: str = ""  # deployment setting when none is named
    search_setting: str = ""  # setting whose layout the supernet uses when none is named
    key_ops: tuple[str, ...] = ()  # op names of its latency-table keys
    relaxations: tuple[str, ...] = ("softmax",)
    supernet_options: frozenset[str] = frozenset()  # keyword options build_supernet takes (spaces.partial: PC-DARTS)

    # ---- architecture codec --------------------------------------------------------------------
    @abstractmethod
    def arch_from_dict(self, data: Any, source: str = "architecture") -> Any:
        """Validate the JSON form (with or without the ``space`` field) → the architecture object."""

    @abstractmethod
    def arch_body(self, arch: Any) -> dict[str, Any]:
        """The JSON form of ``arch`` without the ``space`` field."""

    def arch_to_dict(self, arch: Any) -> dict[str, Any]:
        """The JSON form, always naming the space first."""
        return {SPACE_FIELD: self.name, **self.arch_body(arch)}

    @abstractmethod
    def arch_to_string(self, arch: Any) -> str:
        """One-line form (reports, measurement CSVs)."""

    @abstractmethod
    def arch_from_string(self, text: str) -> Any:
        """Inverse of :meth:`arch_to_string`, validated."""

    def references(self) -> Mapping[str, Any]:
        """Published architectures of this space by name."""
        return {}

    @abstractmethod
    def sample(self, rng: random.Random, setting: str | None = None) -> Any:
        """A uniformly random valid architecture (``setting`` matters where layouts differ by setting)."""

    def summary(self, arch: Any) -> dict[str, Any]:
        """A few numbers people look at (e.g. skip_connect count); JSON-ready."""
        return {}

    def choice_names(self, label: str) -> list[str]:
        """Names of the candidates an α row of ``label`` chooses between (plots label their rows with them)."""
        return []

    def draw(self, arch: Any, path: Any, setting: str | None = None, engine: str = "auto") -> str:
        """Write a diagram of ``arch`` to ``path`` (.svg/.png/.pdf; spaces.drawing); returns the engine used."""
        raise BadInputError(f"space {self.name!r} cannot draw its architectures; draw another space's")

    def degenerate(self, arch: Any) -> str | None:
        """Why ``arch`` computes nothing useful (e.g. its output does not depend on its input), else None.

        Public measurements of such networks are runtime artefacts (a runtime may fold the dead graph away), so
        fits and validations on public data leave them out.
        """
        return None

    def check_arch(self, arch: Any, setting: str, source: str = "architecture") -> None:
        """Raise BadInputError if ``arch`` cannot be built in ``setting`` (e.g. wrong layer count)."""

    def save_arch(self, path: Path | str, arch: Any) -> Path:
        """Write ``arch`` as JSON (with its space), atomically."""
        return atomic_write_json(Path(path), self.arch_to_dict(arch))

    # ---- settings and networks -----------------------------------------------------------------
    def setting(self, name: str | None) -> Setting:
        """The setting ``name`` (None: the default), BadInputError with a suggestion if unknown."""
        name = self.default_setting if name is None else name
        if name not in self.settings:
            raise BadInputError(f"space {self.name!r} has no setting {name!r}{suggest(str(name), list(self.settings))}; "
                                f"its settings: {', '.join(self.settings)}")
        return self.settings[name]

    @abstractmethod
    def geometry(self, setting: str | None = None, input_size: int | None = None, in_channels: int = 3,
                 num_classes: int = 10, layers: int | None = None, channels: int | None = None) -> Geometry:
        """The deployment geometry of ``setting``; unset sizes take the setting's defaults."""

    def search_geometry(self, input_size: int, in_channels: int, num_classes: int, setting: str | None = None,
                        layers: int | None = None, channels: int | None = None) -> Geometry:
        """The sizes of the search supernet (default: the deployment geometry of the search setting)."""
        return self.geometry(self.search_setting if setting is None else setting, input_size=input_size,
                             in_channels=in_channels, num_classes=num_classes, layers=layers, channels=channels)

    def setting_for(self, arch: Any) -> str:
        """The setting an architecture is built in when none is named (default: the space's default)."""
        return self.default_setting

    def deploy_setting(self, search_setting: str | None) -> str:
        """The deployment setting a searched architecture is costed in: the search setting itself, since a
        layer-wise architecture has one block per layer of its layout (DARTS cells deploy in any setting)."""
        return search_setting or self.search_setting

    @abstractmethod
    def geometry_from_dict(self, data: Any, source: str = "geometry") -> Geometry:
        """Validate a JSON ``geometry`` object of this space."""

    @abstractmethod
    def build_network(self, arch: Any, geometry: Geometry, auxiliary: bool = False) -> nn.Module:
        """The discrete network of ``arch`` at ``geometry`` (training mode; call ``.eval()`` to deploy)."""

    def feature_points(self, network: nn.Module) -> list[tuple[str, nn.Module]]:
        """The main-path modules of a network of this space in forward order (stem, blocks or cells, never the
        head), named as in ``network.named_modules()``: where a DNA teacher's stage outputs are read."""
        raise BadInputError(f"networks of space {self.name!r} do not name their stages; use a teacher of another space")

    # ---- search --------------------------------------------------------------------------------
    @abstractmethod
    def build_supernet(self, geometry: Geometry, **options: Any) -> Supernet:
        """The supernet whose layout ``geometry`` describes (the search network, not the deployment one).

        ``options`` are the :attr:`supernet_options` the space takes (e.g. ``partial_channels``, ``edge_norm``)."""

    @abstractmethod
    def discretize(self, arch: Any, supernet: Supernet) -> dict[str, torch.Tensor]:
        """One-hot weights per α label: ``supernet(x, weights)`` then computes exactly ``arch``."""

    def arch_from_choices(self, choices: Mapping[str, list[int]], supernet: Supernet) -> Any:
        """The architecture of one chosen column per α row (label → column per row): the inverse of
        :meth:`discretize` for spaces whose every α row is one decision (NB201, layer-wise). A choice the space
        does not allow → BadInputError. Spaces that derive by another rule (DARTS keeps the top-2 edges per node)
        raise NotImplementedError, and a budgeted derive is not offered for them."""
        raise NotImplementedError(f"space {self.name!r} derives by its own rule")

    # ---- latency-table adapter -----------------------------------------------------------------
    @abstractmethod
    def network_keys(self, arch: Any, geometry: Geometry) -> Counter[str]:
        """Multiset of table keys of the network ``arch`` builds at ``geometry``."""

    @abstractmethod
    def candidate_keys(self, geometry: Geometry) -> list[str]:
        """Every key an architecture of the space can produce at ``geometry``, sorted."""

    @abstractmethod
    def build_op(self, key: str, geometry: Geometry) -> tuple[nn.Module, tuple[int, int, int, int]]:
        """The operator ``key`` names, alone and as deployed (eval mode), and its NCHW input shape."""

    @abstractmethod
    def traced_keys(self, arch: Any, geometry: Geometry) -> Counter[str]:
        """Keys of the built network read off its real forward shapes (hooks): checks :meth:`network_keys`."""

    @abstractmethod
    def cost_model(self, geometry: Geometry, cost: Callable[[str], float], overhead: float = 0.0,
                   unit: str = "ms") -> CostModel:
        """Expected-cost model summing ``cost(key)`` over the geometry's candidate keys."""


def check_space_field(data: Any, expected: str, source: str) -> None:
    """A JSON object that names another space is refused with one line (exit 2)."""
    if isinstance(data, Mapping) and SPACE_FIELD in data and data[SPACE_FIELD] != expected:
        raise BadInputError(f"{source}: architecture of space {data[SPACE_FIELD]!r}, but space {expected!r} is "
                            f"in use; pass an architecture of {expected!r} or switch to --space {data[SPACE_FIELD]}")


def body_without_space(data: Any, expected: str, source: str) -> Any:
    """``data`` minus its ``space`` field, after checking that it names ``expected`` (or nothing)."""
    check_space_field(data, expected, source)
    if isinstance(data, Mapping):
        return {k: v for k, v in data.items() if k != SPACE_FIELD}
    return data

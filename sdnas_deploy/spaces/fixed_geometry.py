"""Geometry of a space whose layout is fixed per setting (NB201, the layer-wise MBConv spaces).

Such a network is named by its setting, input side, input channels and classes; ``--layers/--channels`` belong to
the DARTS space. :class:`SettingGeometry` is the dataclass each of those spaces subclasses (so a table's geometry
still names its space's type), and :class:`FixedLayoutSpace` the two protocol methods that build and read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ..errors import BadInputError
from ..registry import check_fields
from .base import Space, check_geometry_sizes

GEOMETRY_FIELDS = ("setting", "input_size", "in_channels", "num_classes")


@dataclass(frozen=True)
class SettingGeometry:
    """A deployment network of a fixed-layout space: setting (its layout), input side, input channels, classes."""

    setting: str
    input_size: int
    in_channels: int
    num_classes: int

    def __post_init__(self) -> None:
        check_geometry_sizes(self, GEOMETRY_FIELDS[1:])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FixedLayoutSpace(Space):
    """A space whose every setting fixes the network layout; subclasses set :attr:`geometry_type`."""

    geometry_type: type[SettingGeometry] = SettingGeometry

    def geometry(self, setting: str | None = None, input_size: int | None = None, in_channels: int = 3,
                 num_classes: int = 10, layers: int | None = None, channels: int | None = None) -> SettingGeometry:
        spec = self.setting(setting)
        if layers is not None or channels is not None:
            raise BadInputError(f"space {self.name!r} has a fixed layout per setting; --layers/--channels apply to "
                                f"the darts space only (choose another --setting: {', '.join(self.settings)})")
        size = input_size if input_size is not None else (spec.input_size or spec.table_input_size)
        return self.geometry_type(spec.name, size, in_channels, num_classes)

    def geometry_from_dict(self, data: Any, source: str = "geometry") -> SettingGeometry:
        if not isinstance(data, Mapping):
            raise BadInputError(f"{source}: geometry must be an object with keys {', '.join(GEOMETRY_FIELDS)}")
        check_fields(data, GEOMETRY_FIELDS, GEOMETRY_FIELDS, source,
                     f"geometry is missing {{name!r}}; it needs {', '.join(GEOMETRY_FIELDS)}",
                     "unknown geometry key {name!r}{hint}")
        if not isinstance(data["setting"], str):
            raise BadInputError(f"{source}: geometry setting must be a name, got {data['setting']!r}")
        self.setting(data["setting"])
        try:
            return self.geometry_type(**{name: data[name] for name in GEOMETRY_FIELDS})
        except BadInputError as exc:
            raise BadInputError(f"{source}: {exc.message}") from None

"""Search methods as plugins: the ``METHODS`` registry (``darts``, ``sd-darts``, ``dna``), separate from the spaces.

Each method is one folder. A supernet method is a :class:`~.base.SearchMethod` subclass: the search engine
(``nas.searcher``) builds the one a config names and calls its ``step``. A blockwise method
(:class:`~.base.BlockwiseMethod`, DNA) is run whole by ``nas.blockwise``.
"""

from __future__ import annotations

from ..registry import lookup, register_into
from .base import BlockwiseMethod, MethodInfo, SearchContext, SearchMethod, StepResult
from .darts.method import DartsMethod
from .dna.method import DnaMethod
from .sd.method import SDDartsMethod

METHODS: dict[str, type[MethodInfo]] = {}
register_into(METHODS, DartsMethod.name)(DartsMethod)
register_into(METHODS, SDDartsMethod.name)(SDDartsMethod)
register_into(METHODS, DnaMethod.name)(DnaMethod)


def get_method(name: str) -> type[MethodInfo]:
    """The registered method class ``name`` (BadInputError with a suggestion if unknown)."""
    return lookup(METHODS, name, "search method")


__all__ = ["METHODS", "BlockwiseMethod", "MethodInfo", "SearchContext", "SearchMethod", "StepResult", "get_method"]

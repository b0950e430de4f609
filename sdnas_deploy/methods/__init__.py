"""Search methods as plugins: the ``METHODS`` registry (``darts``, ``sd-darts``), separate from the spaces.

Each method is one folder with a :class:`~.base.SearchMethod` subclass; the search engine
(``nas.searcher``) builds the one a config names and calls its ``step``.
"""

from __future__ import annotations

from ..registry import lookup, register_into
from .base import SearchContext, SearchMethod, StepResult
from .darts.method import DartsMethod
from .sd.method import SDDartsMethod

METHODS: dict[str, type[SearchMethod]] = {}
register_into(METHODS, DartsMethod.name)(DartsMethod)
register_into(METHODS, SDDartsMethod.name)(SDDartsMethod)


def get_method(name: str) -> type[SearchMethod]:
    """The registered method class ``name`` (BadInputError with a suggestion if unknown)."""
    return lookup(METHODS, name, "search method")


__all__ = ["METHODS", "SearchContext", "SearchMethod", "StepResult", "get_method"]

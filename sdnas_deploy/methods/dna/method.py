"""The registry entry of DNA: a blockwise method (its engine is ``nas.blockwise``) for layer-wise spaces."""

from __future__ import annotations

from typing import Any

from ..base import BlockwiseMethod


class DnaMethod(BlockwiseMethod):
    """Blockwise distillation from a teacher (DNA, Li et al. 2020) and an exact budgeted traversal."""

    name = "dna"
    description = "DNA: each student block learns a teacher stage (single-path), every path rated, exact selection"

    @classmethod
    def unsupported(cls, space: Any) -> str | None:
        from ...spaces.blockwise import BlockwiseSpace

        if isinstance(space, BlockwiseSpace):
            return None
        return "DNA searches layer-wise (MBConv) spaces; use --space dna, fbnet or proxyless"

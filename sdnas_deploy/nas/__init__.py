"""SD-DARTS search: DARTS supernet search with self-distillation from voting teachers.

Modules: ``config`` (SearchConfig, recipe loading), ``architect`` (α step), ``distill`` (voting
teachers), ``sharpness`` (Hessian eigenvalue w.r.t. α), ``searcher`` (``run_search``). Only the
config is imported here, so reading a recipe does not build any network code.
"""

from __future__ import annotations

from .config import SearchConfig, load_search_config, search_config_from_mapping

__all__ = ["SearchConfig", "load_search_config", "search_config_from_mapping"]

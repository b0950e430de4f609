"""DNA: blockwise distillation of a teacher's stages into a student space, then an exact budgeted selection.

``teacher`` (loading, feature points), ``stages`` (cutting and matching to the student's blocks), ``student``
(the blockwise single-path supernet), ``rating`` (every path of a block, BN re-estimated per path), ``selection``
(branch-and-bound top-k under a budget), ``costs`` (per-layer cost of every candidate), ``method`` (registry
entry). The engine that trains, rates, selects and writes the run is ``nas.blockwise``.
"""

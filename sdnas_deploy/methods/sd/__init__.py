"""SD-DARTS: voting teachers and the distilled search step."""

"""Pictures of runs: plots of what a search, training or profile did, and the self-contained report page."""

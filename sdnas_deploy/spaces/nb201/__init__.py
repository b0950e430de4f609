"""The NAS-Bench-201 cell space (``nb201``): exactly the NB201 network, so its rows match public measurements."""

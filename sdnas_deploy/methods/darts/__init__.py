"""DARTS: the α step (first/second order) and the bilevel search step."""

"""The `sdnas` command line: thin Typer layer over the library (parsing and printing only)."""

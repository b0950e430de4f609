"""sdnas-deploy: SD-DARTS search to a verified, profiled edge model in one tool."""

__version__ = "0.1.0"

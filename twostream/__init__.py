"""twostream: a reproducible two-stream CNN action recognition pipeline."""

__version__ = "0.1.0"

"""TinyRS eval package."""

__version__ = "0.1.0"

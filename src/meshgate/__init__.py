"""Meshgate: a headless, modular platform for running AI services."""

__version__ = "0.1.0"

__all__ = ["__version__"]

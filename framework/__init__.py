"""Recipes to running ML systems: compose, validate, generate and apply Hydra recipes."""

__version__ = "0.1.0"

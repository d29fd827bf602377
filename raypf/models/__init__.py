"""Point-cloud segmentation models, losses, metrics and baselines: the numeric core.

Imports only torch, numpy and pyarrow (DESIGN.md, "Layout"), so everything here
runs on a machine without Ray. Models are built by name (``build_model``).
"""

from raypf.models.registry import build_model, model_names, register_model

__all__ = ["build_model", "model_names", "register_model"]

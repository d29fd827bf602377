"""raypf: machine-learned particle flow on calorimeter point clouds, as a Ray pipeline."""

__version__ = "0.1.0"

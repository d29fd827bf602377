"""The compiled part of raypf (everything else is in pyproject.toml): preprocessing's loops, ``raypf/data/raypf_kernels.c``."""

from setuptools import Extension, setup

# no contraction of a * b + c into one rounding, so results match the numpy they replaced bit for bit
setup(ext_modules=[Extension("raypf_kernels", ["raypf/data/raypf_kernels.c"], extra_compile_args=["-O2", "-ffp-contract=off"])])

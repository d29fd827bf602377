"""The compiled part of raypf (everything else is in pyproject.toml): preprocessing's loops, ``raypf/data/raypf_kernels.c``.

Built as the top-level module ``raypf_kernels`` rather than inside the package: ``ray job submit
--working-dir .`` ships a copy of the sources without what .gitignore lists (the build), and that
copy's ``raypf`` shadows the installed one, while ``raypf_kernels`` still comes from the install.
"""

from setuptools import Extension, setup

# no contraction of a * b + c into one rounding, so results match the numpy they replaced bit for bit
setup(ext_modules=[Extension("raypf_kernels", ["raypf/data/raypf_kernels.c"], extra_compile_args=["-O2", "-ffp-contract=off"])])

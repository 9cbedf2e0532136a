"""Package discovery for ruleengine.

grammar/ and bpf/ sit at the top of the repository (the project's agreed layout)
but ship inside the installed packages as ``ruleengine.grammar`` and
``capture_backends.bpf`` so that a non-editable install finds them. pyproject.toml
cannot express "discover packages *and* map two extra directories", hence this file.
"""

from setuptools import find_packages, setup

PACKAGES = [
    *find_packages(include=["ruleengine", "ruleengine.*", "capture_backends", "capture_backends.*"]),
    "ruleengine.grammar",
    "capture_backends.bpf",
]

setup(
    packages=PACKAGES,
    package_dir={
        "": ".",
        "ruleengine.grammar": "grammar",
        "capture_backends.bpf": "bpf",
    },
)

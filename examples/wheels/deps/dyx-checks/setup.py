from setuptools import setup

setup(
    name="dyx-checks",
    version="0.1.0",
    description="Tiny test helpers used by Dockyard's wheels example (offline stand-in test dependency).",
    license="MIT",
    packages=["dyx_checks"],
    python_requires=">=3.8",
)

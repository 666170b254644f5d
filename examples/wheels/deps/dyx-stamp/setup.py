from setuptools import setup

setup(
    name="dyx-stamp",
    version="0.2.0",
    description="Tiny UTC timestamp helper used by Dockyard's wheels example (offline stand-in dependency).",
    license="MIT",
    packages=["dyx_stamp"],
    python_requires=">=3.8",
)

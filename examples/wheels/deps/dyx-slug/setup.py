from setuptools import setup

setup(
    name="dyx-slug",
    version="0.1.0",
    description="Tiny slug helper used by Dockyard's wheels example (offline stand-in dependency).",
    license="MIT",
    packages=["dyx_slug"],
    python_requires=">=3.8",
)

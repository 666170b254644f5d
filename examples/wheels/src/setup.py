from setuptools import find_packages, setup

setup(
    name="todobackend",
    version="1.0.0",
    description="A tiny todo model kept in MariaDB: Dockyard's wheels example application.",
    license="MIT",
    packages=find_packages(exclude=["tests", "tests.*"]),
    python_requires=">=3.8",
    install_requires=[
        "dyx-slug>=0.1",
        "dyx-stamp>=0.2",
        "PyMySQL>=1.0",
    ],
    entry_points={
        "console_scripts": ["todobackend-smoke=todobackend.smoke:main"],
    },
    extras_require={
        "test": ["dyx-checks>=0.1"],
    },
)

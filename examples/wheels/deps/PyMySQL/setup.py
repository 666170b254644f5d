from setuptools import setup

setup(
    name="PyMySQL",
    version="1.0.2",
    description="Pure Python MySQL Driver",
    license="MIT",
    url="https://github.com/PyMySQL/PyMySQL/",
    packages=["pymysql", "pymysql.constants"],
    python_requires=">=3.6",
)

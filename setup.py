"""Packaging for forgeloc; everything comes from nbdev's settings.ini (single source)."""
from configparser import ConfigParser
from setuptools import find_packages, setup

cfg = ConfigParser(delimiters=["="])
cfg.read("settings.ini", encoding="utf-8")
c = cfg["DEFAULT"]

setup(
    name=c["lib_name"],
    version=c["version"],
    description=c["description"],
    author=c["author"],
    license="Apache-2.0",
    python_requires=">=" + c["min_python"],
    packages=find_packages(include=["forgeloc", "forgeloc.*"]),
    include_package_data=True,
    install_requires=c["requirements"].split(),
    extras_require={"dev": c["dev_requirements"].split(),
                    # dlib compiles from source (about 14 minutes on 2 cores; pip caches the wheel)
                    "landmarks": c["landmarks_requirements"].split()},
    # the `forgeloc` command (nbs/91_cli.ipynb): settings.ini's console_scripts, nbdev's key
    entry_points={"console_scripts": c.get("console_scripts", "").split()},
    zip_safe=False,
)

import os
import re

from setuptools import find_packages, setup

# The one version source is nasp_tf.__version__ (CITATION.cff repeats it; a test checks).
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "nasp_tf", "__init__.py"),
          encoding="utf-8") as f:
    VERSION = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)

setup(
    name="nasp_tf",
    version=VERSION,
    description="NASP (Efficient Neural Architecture Search via Proximal Iterations, "
                "AAAI 2020) in TensorFlow/Keras",
    # configs/ (one copy, at the top of the repository) is installed as
    # nasp_tf/configs, where --flagfile=configs/NAME finds it from any directory.
    packages=find_packages(include=["nasp_tf", "nasp_tf.*"]) + ["nasp_tf.configs"],
    package_dir={"nasp_tf.configs": "configs"},
    package_data={"nasp_tf.data": ["ptb_sample/*.txt", "ptb_sample/README.md"],
                  "nasp_tf.configs": ["*.flags"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "importlib_resources",
        "absl-py>=1.0",
        "numpy>=1.23",
        "tensorboard>=2.16",
        "matplotlib>=3.5",
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist>=3", "scikit-learn>=1.0"],
        "digits": ["scikit-learn>=1.0"],
    },
    entry_points={"console_scripts": [
        "nasp-search=nasp_tf.cli.main:search",
        "nasp-train=nasp_tf.cli.main:train",
        "nasp-bench=nasp_tf.cli.main:bench",
        "nasp-compare=nasp_tf.cli.main:compare",
        "nasp-launch=nasp_tf.cli.main:launch",
    ]},
    license="Apache-2.0",
    url="https://arxiv.org/abs/1905.13577",
)

"""The build backend: setuptools, building wheels (and their metadata) in a temporary copy of the
tree, so `pip install .` leaves no build/ or *.egg-info behind in the checkout. Editable installs
and sdists are setuptools' own, unchanged (an editable install must point at the checkout).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 (the hooks not wrapped here)

# NOTE: never copied: version control, environments, build outputs, caches.
_SKIP = shutil.ignore_patterns(".git", ".venv", "venv", "build", "dist", "*.egg-info", "__pycache__",
                               ".pytest_cache", ".hypothesis", ".cache", ".gpu", "node_modules")


@contextlib.contextmanager
def _in_a_copy():
    here = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="sumonce-build-") as tmp:
        copy = Path(tmp) / "src"
        shutil.copytree(here, copy, ignore=_SKIP, symlinks=True)
        os.chdir(copy)
        try:
            yield
        finally:
            os.chdir(here)


def get_requires_for_build_wheel(config_settings=None):
    with _in_a_copy():
        return _setuptools.get_requires_for_build_wheel(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    with _in_a_copy():
        return _setuptools.prepare_metadata_for_build_wheel(os.path.abspath(metadata_directory), config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    metadata = os.path.abspath(metadata_directory) if metadata_directory else None
    with _in_a_copy():
        return _setuptools.build_wheel(os.path.abspath(wheel_directory), config_settings, metadata)

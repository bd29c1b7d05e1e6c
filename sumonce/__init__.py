"""sumonce: is every partial sum reduced exactly once?

One import namespace. The repository keeps its layers as top-level folders (proto/, spec/,
actors/); the wheel installs them as sumonce.proto, sumonce.spec and sumonce.actors (the
package-dir mapping in pyproject.toml). Run from a checkout that was not installed (a Ray job's
working directory, for one), the same names resolve to the folders beside this one.
"""
from __future__ import annotations

from pathlib import Path as _Path

__version__ = "0.1.0"

_here = _Path(__file__).resolve().parent
# NOTE: only in a checkout (proto/ beside sumonce/, not inside it): a wheel holds sumonce/proto.
if not (_here / "proto").is_dir() and (_here.parent / "proto" / "__init__.py").is_file():
    __path__.append(str(_here.parent))  # noqa: F821 (the package's own __path__)

"""`sumonce prove --catalogue my_models.py`: prove models kept outside the package.

The file is Python that builds its models from proto's types, as proto/catalogue.py does, and
names them in `MODELS` (a tuple of sumonce.proto.sites.Model). Each model gets the properties a
catalogued one gets for itself: every site's helper-based guard against its legacy one, and
exactly-once at the helper and at the legacy guards. The package's own catalogue (and the tests
pinned to SGLang's counts) stay as they are.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from sumonce.proto.catalogue import MODELS_BY_NAME
from sumonce.proto.sites import Model, Version

from .properties import Property, exactly_once, site_equivalent


class CatalogueError(ValueError):
    """A catalogue file that cannot be used: the message is the one line the user sees."""


def load_models(path: str) -> tuple[Model, ...]:
    file = Path(path)
    if not file.is_file() or file.suffix != ".py":
        raise CatalogueError(f"--catalogue {path}: not a Python file (give a .py file that defines MODELS)")
    spec = importlib.util.spec_from_file_location(f"sumonce_catalogue_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 (user code: any error becomes the one-line message)
        raise CatalogueError(f"--catalogue {path}: importing it failed: {type(e).__name__}: {e}") from None
    models = getattr(module, "MODELS", None)
    if not isinstance(models, (tuple, list)) or not models or not all(isinstance(m, Model) for m in models):
        raise CatalogueError(f"--catalogue {path}: MODELS must be a non-empty tuple of "
                             "sumonce.proto.sites.Model")
    taken = [m.name for m in models if m.name in MODELS_BY_NAME]
    if taken:
        raise CatalogueError(f"--catalogue {path}: model {taken[0]!r} is already in the package's catalogue; "
                             "give it another name")
    return tuple(models)


def catalogue_properties(models: tuple[Model, ...], known: bool = True) -> list[Property]:
    equivalent = [site_equivalent(s, m) for m in models for s in m.sites
                  if Version.LEGACY in s.guards and Version.HELPER in s.guards]
    return equivalent + exactly_once(models=models, known=known)

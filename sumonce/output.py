"""What every machine-readable output shares: the schema version, the tool, and the JSON Schema
files (sumonce/schemas/, installed with the package) that describe each document.

SCHEMA_VERSION changes only when a field is removed or changes meaning; new fields may appear in
any version (readers ignore what they do not know). docs/OUTPUT.md describes every document.
"""
from __future__ import annotations

import json
import sys

SCHEMA_VERSION = 1
DOCUMENTS = ("prove", "audit", "audit-compare", "audit-baseline", "audit-history", "run")


def tool() -> dict:
    from sumonce import __version__
    return {"name": "sumonce", "version": __version__}


def document(kind: str, body: dict) -> dict:
    """`body` as a `kind` document: schema_version, kind and tool first."""
    assert kind in DOCUMENTS, kind
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "tool": tool(), **body}


def schema(kind: str) -> dict:
    """The JSON Schema (draft 2020-12) of a `kind` document, as installed with the package."""
    from importlib import resources  # NOTE: only where a schema is read (start-up time)
    text = resources.files("sumonce").joinpath("schemas", f"{kind}.schema.json").read_text()
    return json.loads(text)


def dump(doc: dict, file=None) -> None:
    """Print a document as indented JSON (stdout by default)."""
    file = file or sys.stdout
    json.dump(doc, file, indent=2)
    file.write("\n")

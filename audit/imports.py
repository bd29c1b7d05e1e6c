"""A model file's SGLang names read under their own names when it imports them under another:
`from sglang.srt.layers.moe import reduce_moe_output as rmo` and `rmo(x)` read as
`reduce_moe_output(x)`, so the audit knows the helper, the reduce calls and the getters however a
file names them (the audit matches those by name: audit/extract.py, audit/atoms.py).

Applied to each model file before the audit reads it (audit/audit.py). Only the names the audit
matches (VOCABULARY) are read so, and only when the alias is not such a name itself: a file with
no such alias (every file of the 17 releases) is returned as it is, without being parsed. Only
the names change, never a line: every line number the audit prints is the file's own.

An alias is left as written where reading it under its own name could change what a name means:
the file binds the alias otherwise (assigns, defines or imports it again), or binds the original
name too.

A local alias of a function the audit matches by its call (`ep_reduce = moe_expert_parallel_all_reduce`
then `ep_reduce(x)`, callables()) is read the same way: its uses read as the name, where every
binding of the alias in the file assigns it that name (in one method or several) and the file binds
the name only by importing it from SGLang under that name (the assignments are left as written).
"""
from __future__ import annotations

import ast
import dataclasses
import re
from collections import Counter
from functools import cache

from .source import MODELS_DIR

_PAIR_ALIAS = re.compile(r"\s+(\w+)")


@cache
def vocabulary() -> frozenset:
    """The names the audit recognises by name: the reduce calls and their wrappers, the helper, Q,
    V, the 0.5.21+ predicates, the parallel-state and backend getters, the experts classes and
    kernels, LayerCommunicator."""
    from .atoms import BACKEND_GETTERS, GETTERS, Q_NAME, SIZE_GETTERS, V_NAME
    from .coverage_facts import EXPERTS_CLASSES, KERNELS
    from .era import COMPLETE
    from .extract import HELPER_NAME, REDUCE_CALLS
    return frozenset({*REDUCE_CALLS, HELPER_NAME, Q_NAME, V_NAME, COMPLETE, "should_add_replicated_moe_output",
                      *SIZE_GETTERS, *GETTERS, *BACKEND_GETTERS, "is_dp_attention_enabled",
                      "get_attention_tp_size", *EXPERTS_CLASSES, *KERNELS, "get_moe_impl_class",
                      "LayerCommunicator"})


@cache
def callables() -> frozenset:
    """The functions of VOCABULARY a file may also call through a local alias (`reduce = name`):
    the reduce calls and their wrappers, the helper, Q, V and the 0.5.21+ predicates."""
    from .atoms import Q_NAME, V_NAME
    from .era import COMPLETE
    from .extract import HELPER_NAME, REDUCE_CALLS
    return frozenset({*REDUCE_CALLS, HELPER_NAME, Q_NAME, V_NAME, COMPLETE, "should_add_replicated_moe_output"})


@cache
def _assigned() -> re.Pattern:
    """A line ending `= name` for a name of callables() (one expression for them all: 7 ms a
    release, where a look for each name's line end first took 15)."""
    return re.compile(r"= *(?:" + "|".join(sorted(callables())) + r") *\n")


def _may_alias_locally(text: str) -> bool:
    """Does a line end `= name` for a name of callables()?"""
    return _assigned().search(text) is not None


def canonical(text: str) -> str:
    """`text` with each SGLang import alias replaced by the name it imports, and each local alias
    (`ep_reduce = moe_expert_parallel_all_reduce`) by the name it holds (see the module)."""
    words = vocabulary()
    if not _may_alias(text, words) and not _may_alias_locally(text):
        return text
    try:
        tree = ast.parse(text)
    except SyntaxError:  # NOTE: the audit reports the file as unparsed, from its own text
        return text
    renames, aliases, local = _renames(tree, words)
    if not renames and not local:
        return text
    spans = [(n.lineno, n.col_offset, n.end_col_offset, renames[n.id]) for n in ast.walk(tree)
             if isinstance(n, ast.Name) and n.id in renames]
    spans += [(n.lineno, n.col_offset, n.end_col_offset, local[n.id]) for n in ast.walk(tree)
              if isinstance(n, ast.Name) and n.id in local and isinstance(n.ctx, ast.Load)]
    spans += [(a.lineno, a.col_offset, a.end_col_offset, a.name) for a in aliases]
    return _replaced(text, spans)


def _may_alias(text: str, words: frozenset) -> bool:
    """Is some name of `words` followed by `as` and a name not of `words` (a quick look for
    str.find, about 10 ms for a whole release where a regular expression takes 80; _renames
    then decides on the parsed file)?"""
    i = text.find(" as")
    while i != -1:
        if text[i + 3:i + 4].isspace():
            j = i
            while j > 0 and text[j - 1] in " \t\r\n\\":
                j -= 1
            k = j
            while k > 0 and (text[k - 1].isalnum() or text[k - 1] == "_"):
                k -= 1
            alias = _PAIR_ALIAS.match(text, i + 3)
            if text[k:j] in words and alias is not None and alias.group(1) not in words:
                return True
        i = text.find(" as", i + 3)
    return False


def _renames(tree: ast.Module, words: frozenset) -> tuple[dict[str, str], list[ast.alias], dict[str, str]]:
    """alias -> the SGLang name it imports, for the aliases safe to read so; their alias nodes; and
    local alias -> the SGLang name it is assigned (`x = name`: every binding of the alias in the file
    is such an assignment of that one name, which the file binds only by importing it from SGLang
    under that name)."""
    found: dict[str, list[ast.alias]] = {}
    assigned: dict[str, list[str]] = {}
    imported: Counter = Counter()
    bound: Counter = Counter()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            from_sglang = node.level > 0 or (node.module or "").split(".")[0] == "sglang"
            for a in node.names:
                bound[a.asname or a.name] += 1
                if from_sglang and not a.asname:
                    imported[a.name] += 1
                if from_sglang and a.asname and a.name in words and a.asname not in words:
                    found.setdefault(a.asname, []).append(a)
        elif isinstance(node, ast.Import):
            for a in node.names:
                name = a.asname or a.name.split(".")[0]
                bound[name] += 1
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound[node.name] += 1
            args = node.args if not isinstance(node, ast.ClassDef) else None
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if args else ():
                if arg is not None:
                    bound[arg.arg] += 1
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Name) and node.value.id in callables() and node.targets[0].id not in words:
            assigned.setdefault(node.targets[0].id, []).append(node.value.id)
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound[node.id] += 1
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and getattr(node, "name", None):
            bound[node.name] += 1
    # NOTE: before Python 3.12 a name inside an f-string may carry wrong columns: such an alias is left
    in_fstrings = {n.id for s in ast.walk(tree) if isinstance(s, ast.JoinedStr)
                   for n in ast.walk(s) if isinstance(n, ast.Name)}
    renames, nodes = {}, []
    for alias, imports in found.items():
        if alias in in_fstrings:
            continue
        names = {a.name for a in imports}
        if len(imports) != bound[alias] or len(names) != 1:
            continue
        (name,) = names
        if bound[name]:
            continue
        renames[alias] = name
        nodes += imports
    local = {alias: names[0] for alias, names in assigned.items()
             if alias not in in_fstrings and bound[alias] == len(names) and len(set(names)) == 1
             and imported[names[0]] == bound[names[0]] > 0}
    return renames, nodes, local


def _replaced(text: str, spans: list[tuple[int, int, int, str]]) -> str:
    """Each (line, start column, end column, new text) put in place (columns in UTF-8 bytes, as
    ast gives them); later spans of a line first, so earlier columns stay right. Lines as ast counts
    them (split at newlines only: a form feed inside a line stays in it)."""
    lines = text.split("\n")
    for line, start, end, new in sorted(spans, key=lambda s: (s[0], -s[1])):
        raw = lines[line - 1].encode()
        lines[line - 1] = (raw[:start] + new.encode() + raw[end:]).decode()
    return "\n".join(lines)


def canonical_source(src):
    """The release (audit/source.Source) with each model file read through canonical(); the same
    object when no file changes."""
    changed = {}
    for rel, text in src.files.items():
        if rel.startswith(MODELS_DIR):
            new = canonical(text)
            if new is not text:
                changed[rel] = new
    return dataclasses.replace(src, files={**src.files, **changed}) if changed else src

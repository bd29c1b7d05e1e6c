"""`sumonce audit --sarif FILE`: the sites that differ from the helper or are not understood, as
SARIF 2.1.0 for code-scanning tools.

Locations are relative to the source root (`SRCROOT`: the tree given, or the package root inside
a wheel), so an upload from the SGLang checkout annotates its own files. Each result carries a
partial fingerprint computed here from what names the site across edits (model, method, path,
group, occurrence; not its line): an upload action cannot compute one for a wheel that is not in
the checkout.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from sumonce import __version__

from .baseline import BAD, site_keys
from .verdict import SiteVerdict

DIFFERS, NOT_UNDERSTOOD = SiteVerdict.DIFFERS, SiteVerdict.NOT_UNDERSTOOD
UNREAD = "source file not audited"
UNACCOUNTED = "MoE model file unaccounted"

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
FINGERPRINT = "sumonceSite/v1"

RULES = {
    DIFFERS: {
        "id": "SUMONCE001", "name": "PostExpertsGuardDiffers", "level": "error",
        "short": "Post-experts all-reduce guard differs from the helper",
        "full": ("This post-experts all-reduce is guarded by hand-written code that is not equivalent to "
                 "should_skip_post_experts_all_reduce (SGLang PR #23748): for some valid configuration and "
                 "forward state it reduces a partial sum twice or never."),
        "help": ("Call should_skip_post_experts_all_reduce (sglang/srt/layers/moe/utils.py) instead of the "
                 "hand-written condition. The message gives a configuration where the two disagree and what "
                 "it does to the sum; `sumonce config` with those flags shows Q, V, F and R there."),
    },
    NOT_UNDERSTOOD: {
        "id": "SUMONCE002", "name": "PostExpertsGuardNotUnderstood", "level": "warning",
        "short": "Post-experts all-reduce guard not understood",
        "full": ("sumonce could not lift this post-experts all-reduce guard into a formula (an unknown call, "
                 "attribute or control flow), so it cannot say whether every partial sum is reduced exactly once."),
        "help": ("Call should_skip_post_experts_all_reduce, or write the guard from the terms it understands "
                 "(group sizes, the F and R flags, Q, V, server arguments). The message names what was not "
                 "understood."),
    },
    UNREAD: {
        "id": "SUMONCE003", "name": "SourceFileNotAudited", "level": "error",
        "short": "A source file could not be read or parsed, so it was not audited",
        "full": ("A model file (or layers/moe/utils.py) could not be read (a dangling or looping link, a FIFO, "
                 "a directory, a NUL byte, a corrupt or encrypted wheel entry, a file over the size bound) or "
                 "does not parse. The audit never passes what it did not read."),
        "help": ("Fix or remove the file named in the message; the rest of the tree was still audited."),
    },
    UNACCOUNTED: {
        "id": "SUMONCE004", "name": "MoEModelFileUnaccounted", "level": "error",
        "short": "A MoE model file's post-experts sum is accounted for by nothing the audit read",
        "full": ("This model file builds (or takes) a MoE layer, but the audit found no judged post-experts "
                 "all-reduce site for it, no stage boundary that sums its output, no experts layer that sums "
                 "inside itself (reduce_results=True), and no other MoE model file whose layers it uses. "
                 "Whether its partial sums are reduced exactly once is unknown."),
        "help": ("Read the message: it names the all-reduce the audit does not take as a site, the sub-package "
                 "it does not read, or the file the MoE layers come from. Route the sum through "
                 "should_skip_post_experts_all_reduce / reduce_moe_output, or declare the FFN stage "
                 "(declare_ffn) so the layer boundary sums it, and audit again; see docs/AUDIT.md, coverage."),
    },
}


def _rule(verdict: str) -> dict:
    r = RULES[verdict]
    return {"id": r["id"], "name": r["name"], "shortDescription": {"text": r["short"]},
            "fullDescription": {"text": r["full"]}, "help": {"text": r["help"], "markdown": r["help"]},
            "defaultConfiguration": {"level": r["level"]},
            "properties": {"tags": ["correctness", "distributed", "moe"]}}


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def source_root(rep) -> tuple[str, dict]:
    """The prefix from the source root to the package root, and SRCROOT's description."""
    root = Path(rep.root)
    if root.is_dir():
        given = Path(rep.label) if Path(rep.label).is_dir() else root
        prefix = root.resolve().relative_to(given.resolve()).as_posix()
        return ("" if prefix == "." else prefix + "/"), {"uri": given.resolve().as_uri() + "/"}
    return "", {"description": {"text": f"the package root inside {root.name} (site-packages/ once installed)"}}


def category(rep) -> str:
    """automationDetails.id: 'sumonce-audit/<target>/' (a category, one run per target)."""
    label = Path(rep.label).name if Path(rep.label).is_dir() else rep.label
    return f"sumonce-audit/{re.sub(r'[^A-Za-z0-9._=+-]', '_', label)}/"


def result(key: str, v, prefix: str, baseline_state: str | None) -> dict:
    rule = RULES[v.verdict]
    reach = f" Reached when: {'; '.join(v.reach)}." if v.reach else ""
    out = {"ruleId": rule["id"], "ruleIndex": list(RULES).index(v.verdict), "level": rule["level"],
           "message": {"text": f"{v.method} ({v.path}/{v.group_name}): {v.verdict}: {v.detail}.{reach}"},
           "locations": [{"physicalLocation": {
               "artifactLocation": {"uri": str(PurePosixPath(prefix + v.file)), "uriBaseId": "SRCROOT"},
               "region": {"startLine": max(1, v.line)}}}],
           "partialFingerprints": {FINGERPRINT: fingerprint(key)},
           "properties": {"model": v.model, "method": v.method, "path": v.path, "group": v.group_name,
                          "siteKey": key, "witness": v.witness}}
    if baseline_state:
        out["baselineState"] = baseline_state
    return out


def unread(u: dict, prefix: str) -> dict:
    rule = RULES[UNREAD]
    return {"ruleId": rule["id"], "ruleIndex": list(RULES).index(UNREAD), "level": rule["level"],
            "message": {"text": f"{u['file']} was not audited: {u['error']}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": str(PurePosixPath(prefix + u["file"])), "uriBaseId": "SRCROOT"},
                "region": {"startLine": max(1, u["line"])}}}],
            "partialFingerprints": {FINGERPRINT: fingerprint(f"unread:{u['file']}")}}


def unaccounted(row, prefix: str) -> dict:
    rule = RULES[UNACCOUNTED]
    return {"ruleId": rule["id"], "ruleIndex": list(RULES).index(UNACCOUNTED), "level": rule["level"],
            "message": {"text": f"MoE model file {row.model} is unaccounted: {row.summary}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": str(PurePosixPath(prefix + row.file)), "uriBaseId": "SRCROOT"},
                "region": {"startLine": max(1, row.evidence[0].line if row.evidence else 1)}}}],
            "partialFingerprints": {FINGERPRINT: fingerprint(f"unaccounted:{row.file}")},
            "properties": {"model": row.model}}


def sarif(rep, baseline: dict | None = None) -> dict:
    """The SARIF log of a report; with a baseline check, each result's baselineState."""
    prefix, srcroot = source_root(rep)
    state = {}
    if baseline:
        state.update({c["key"]: "new" for c in baseline["new"]})
        state.update({c["key"]: "updated" for c in baseline["changed"]})
    results = [result(k, v, prefix, state.get(k, "unchanged") if baseline else None)
               for k, v in site_keys(rep).items() if v.verdict in BAD]
    # NOTE: a file not read is never a pass; a baseline records verdicts, not files, so it is "new"
    results += [unread(u, prefix) | ({"baselineState": "new"} if baseline else {}) for u in rep.unparsed]
    fresh = set(baseline.get("unaccounted", ())) if baseline else set()
    results += [unaccounted(r, prefix) | ({"baselineState": "new" if r.model in fresh else "unchanged"}
                                          if baseline else {}) for r in rep.coverage.unaccounted]
    driver = {"name": "sumonce", "version": __version__, "semanticVersion": __version__,
              "fullName": f"sumonce audit {__version__}", "rules": [_rule(v) for v in RULES]}
    return {"$schema": SCHEMA_URI, "version": "2.1.0",
            "runs": [{"tool": {"driver": driver}, "automationDetails": {"id": category(rep)},
                      "originalUriBaseIds": {"SRCROOT": srcroot}, "columnKind": "unicodeCodePoints",
                      "results": results}]}

"""What `sumonce audit --history` prints, from the releases' entries (audit/history.py): per model
the verdict in each release, per finding (a differing or not understood site) the releases in
which it holds, per upstream bug (audit/history_bugs.py) the releases that shipped it; the same
as an `audit-history` JSON document.
"""
from __future__ import annotations

ORDER = ("differs", "not understood", "unaccounted", "equivalent in effect here", "cannot run in scope", "equivalent",
         "calls the helper", "delegated to the layer boundary", "no post-experts reduce needed")
"""Worst first: a model's verdict in a release is the worst of its sites'; a MoE model file without
sites takes its coverage row's kind (audit/coverage_rows.RowKind)."""
BAD = ("differs", "not understood")
MARK = {"differs": "D", "not understood": "?", "equivalent in effect here": "~", "cannot run in scope": ".",
        "equivalent": "=", "calls the helper": "H", "unaccounted": "U", "delegated to the layer boundary": "B",
        "no post-experts reduce needed": "N", None: "-"}


def model_verdicts(entry: dict) -> dict[str, str]:
    """model -> its worst site verdict in one release, or, for a MoE model file without a site of
    its own, its coverage row's kind (delegated to the layer boundary, no post-experts reduce
    needed, unaccounted). The one place a model's row is formed."""
    out: dict[str, str] = {}
    for s in entry["audit"]["sites"]:
        was = out.get(s["model"])
        if was is None or ORDER.index(s["verdict"]) < ORDER.index(was):
            out[s["model"]] = s["verdict"]
    for row in entry["audit"].get("coverage", {}).get("rows", ()):
        if row["model"] not in out and row["kind"] != "sites":
            out[row["model"]] = row["kind"]
    return out


def models(entries: list[dict]) -> list[dict]:
    per = [model_verdicts(e) for e in entries]
    names = sorted({m for p in per for m in p})
    return [{"model": m, "verdicts": {e["release"]: p.get(m) for e, p in zip(entries, per)}} for m in names]


def findings(entries: list[dict]) -> list[dict]:
    """Each (model, method, path/group, verdict) with a bad verdict: the releases where it holds,
    the first and last, and its lines in each."""
    found: dict[tuple, dict] = {}
    for e in entries:
        for s in e["audit"]["sites"]:
            if s["verdict"] not in BAD:
                continue
            key = (s["model"], s["method"], f"{s['path']}/{s['group']}", s["verdict"])
            f = found.setdefault(key, {"model": key[0], "method": key[1], "path": key[2], "verdict": key[3],
                                       "releases": [], "lines": {}, "detail": ""})
            if e["release"] not in f["releases"]:
                f["releases"].append(e["release"])
            f["lines"].setdefault(e["release"], []).append(s["line"])
            f["detail"] = s["detail"]
    order = [e["release"] for e in entries]
    out = []
    for f in found.values():
        f["first"], f["last"] = f["releases"][0], f["releases"][-1]
        f["contiguous"] = order.index(f["last"]) - order.index(f["first"]) + 1 == len(f["releases"])
        out.append(f)
    return sorted(out, key=lambda f: (f["model"], f["method"], f["path"], f["verdict"]))


def bugs(entries: list[dict]) -> list[dict]:
    from .history_bugs import (
        BUGS,  # NOTE: here, not at the top: the report imports ORDER without z3
    )
    out = []
    for bug in BUGS:
        per = {e["release"]: e["bugs"][bug.id] for e in entries}
        shipped = [r for r, d in per.items() if d["shipped"] is True]
        undecided = [r for r, d in per.items() if d["shipped"] is None]
        out.append({"id": bug.id, "what": bug.what, "upstream": bug.upstream, "shipped_in": shipped,
                    "undecided_in": undecided, "per_release": per})
    return out


def runs(releases: list[str], order: list[str]) -> str:
    """Releases as runs of consecutive ones in `order`: 'A..B, C'."""
    idx = [order.index(r) for r in releases]
    parts, start = [], 0
    for i in range(1, len(idx) + 1):
        if i == len(idx) or idx[i] != idx[i - 1] + 1:
            a, b = releases[start], releases[i - 1]
            parts.append(a if a == b else f"{a}..{b}")
            start = i
    return ", ".join(parts) or "none"


def _short(v: str) -> str:
    return v.removeprefix("0.5.").replace(".post", "p")


def lines(entries: list[dict], spec: str, seconds: float) -> list[str]:
    order = [e["release"] for e in entries]
    cached = sum(e["cached"] for e in entries)
    head = f"sumonce audit --history {spec}: {len(entries)} releases in {seconds:.1f} s ({cached} from the result cache)"
    out = [head, ""]
    width = max(len(m["model"]) for m in models(entries)) if any(e["audit"]["sites"] for e in entries) else 5
    cols = [_short(v) for v in order]
    cw = max(len(c) for c in cols)
    out.append(f"{'release':<{width}}  " + " ".join(c.rjust(cw) for c in cols))
    out.append(f"{'era':<{width}}  " + " ".join(_short(e["era"]).rjust(cw) for e in entries))
    for m in models(entries):
        out.append(f"{m['model']:<{width}}  " + " ".join(MARK[m["verdicts"][v]].rjust(cw) for v in order))
    out.append("  " + ", ".join(f"{k}: {v}" for v, k in MARK.items() if v) + ", -: no site and no MoE model file")
    out += ["", "findings (differs / not understood), the releases where each holds:"]
    for f in findings(entries):
        out.append(f"  {f['model']} {f['method']} ({f['path']}) {f['verdict']}: {f['first']} .. {f['last']}"
                   + ("" if f["contiguous"] else f" [only {runs(f['releases'], order)}]"))
    out += ["", "upstream bugs, decided from each release's lifted Q, V and helper, or its era's prove rows:"]
    for b in bugs(entries):
        why = next((d["why"] for d in b["per_release"].values() if d["shipped"] is None), "")
        said = [f"shipped in {runs(b['shipped_in'], order)}"] if b["shipped_in"] else []
        if len(b["undecided_in"]) < len(order) and not b["shipped_in"]:
            said.append("shipped in none")
        if b["undecided_in"]:
            said.append(f"in {runs(b['undecided_in'], order)} {why}")
        out.append(f"  {b['id']} ({b['upstream']}): {'; '.join(said)}")
    return out


def to_json(entries: list[dict], spec: str, seconds: float) -> dict:
    releases = [{"release": e["release"], "era": e["era"], "era_reason": e["era_reason"], "wheel": e["wheel"],
                 "cached": e["cached"], "helper": e["audit"]["helper"]["form"], "counts": e["audit"]["counts"],
                 "seconds": e["audit"]["seconds"], "sites": e["audit"]["sites"], "unparsed": e["audit"]["unparsed"]}
                for e in entries]
    return {"range": spec, "from": entries[0]["release"], "to": entries[-1]["release"], "seconds": round(seconds, 3),
            "releases": releases, "models": models(entries), "findings": findings(entries), "bugs": bugs(entries),
            "passed": passed(entries)}


def _bad(entries: list[dict]) -> bool:
    """Some site differs or is not understood, or some MoE model file is unaccounted, in some release."""
    return any(s["verdict"] in BAD for e in entries for s in e["audit"]["sites"]) or \
        any(e["audit"].get("coverage", {}).get("unaccounted") for e in entries)


def passed(entries: list[dict]) -> bool:
    return not _bad(entries) and not any(e["audit"]["unparsed"] for e in entries)


def exit_code(entries: list[dict]) -> int:
    """As `sumonce audit` over every release: 1 some site differs or is not understood, or a MoE
    model file is unaccounted, 4 some file unread, else 0."""
    if _bad(entries):
        return 1
    return 4 if any(e["audit"]["unparsed"] for e in entries) else 0

"""Print an audit: a table (rich where installed, plain text otherwise), summary counts, JSON,
and the sites whose verdict changed between two targets. SARIF: audit/sarif.py.
"""
from __future__ import annotations

from collections import Counter

from .verdict import SiteVerdict

DIFFERS, NOT_UNDERSTOOD = SiteVerdict.DIFFERS, SiteVerdict.NOT_UNDERSTOOD

COLUMNS = ("model", "method", "line", "path", "verdict", "detail")
COVERAGE_COLUMNS = ("MoE model file", "row", "why [evidence, file:line]")


def coverage_rows(rep) -> list[tuple]:
    """One row per MoE model file: its kind and summary, the evidence as file:line."""
    return [(r.model, r.kind.value, r.summary + ("  [" + "; ".join(str(e) for e in r.evidence) + "]" if r.evidence else ""))
            for r in rep.coverage.rows]


def rows(rep) -> list[tuple]:
    return [(v.model, v.method, str(v.line), f"{v.path}/{v.group_name}", v.verdict.value, _detail(v)) for v in rep.sites]


def _detail(v) -> str:
    reach = f" [reached when: {'; '.join(v.reach)}]" if v.reach else ""
    note = f" (note: {v.note})" if v.note else ""
    return v.detail + note + reach


def counts(rep) -> dict:
    return dict(Counter(v.verdict.value for v in rep.sites))


def summary_lines(rep) -> list[str]:
    c = counts(rep)
    lines = [f"{rep.label}: {len(rep.sites)} post-experts all-reduce sites in "
             f"{len({v.file for v in rep.sites})} of {rep.files} model files, {rep.seconds:.2f} s; "
             + ", ".join(f"{k}: {n}" for k, n in sorted(c.items()))]
    lines.append(rep.era_reason or "no era")
    cov = rep.coverage
    lines.append(cov.line() + " (" + ", ".join(f"{k}: {n}" for k, n in sorted(cov.counts().items())) + ")")
    for r in cov.unaccounted:
        lines.append(f"  unaccounted MoE model file {r.model} ({r.file}): {r.summary}")
    lines.append(f"helper: {rep.release.form}")
    for chk in rep.release.checks:
        lines.append(f"  {chk['name']}: {chk['verdict']} ({chk['detail']})")
    for d in rep.decoders:
        if d.get("mismatches"):
            lines.append(f"  decoder {d['model']} differs from proto's catalogue: {'; '.join(d['mismatches'])}")
    for u in rep.unparsed:
        lines.append(f"  {u['file']}:{u['line']}: does not parse ({u['error']}); the other files were audited")
    return lines


def table(rep) -> str:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        return plain_table(rep)
    t = Table(title=f"sumonce audit {rep.label}")
    for col in COLUMNS:
        t.add_column(col, overflow="fold")
    for r in rows(rep):
        t.add_row(*r)
    c = Table(title=f"MoE model files of {rep.label}: {rep.coverage.accounted}/{rep.coverage.found} accounted for")
    for col in COVERAGE_COLUMNS:
        c.add_column(col, overflow="fold")
    for r in coverage_rows(rep):
        c.add_row(*r)
    console = Console(width=200, record=True)
    with console.capture() as cap:
        console.print(t)
        console.print(c)
    return cap.get()


def plain_table(rep) -> str:
    cov = rep.coverage
    head = f"MoE model files, one row each ({cov.accounted}/{cov.found} accounted for):"
    moe = "\n".join("  " + ln for ln in _plain([COVERAGE_COLUMNS] + coverage_rows(rep)).splitlines())
    return _plain([COLUMNS] + rows(rep)) + "\n\n" + head + "\n" + moe


def _plain(data: list[tuple]) -> str:
    n = len(data[0])
    widths = [max(len(r[i]) for r in data) for i in range(n - 1)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(len(widths))) + "  " + r[-1] for r in data)


def to_json(rep) -> dict:
    sites = [{"model": v.model, "method": v.method, "file": v.file, "line": v.line, "path": v.path.value,
              "group": v.group_name, "verdict": v.verdict.value, "detail": v.detail, "note": v.note,
              "witness": v.witness, "reached_when": v.reach, "callers": v.callers} for v in rep.sites]
    return {"target": rep.label, "files": rep.files, "seconds": round(rep.seconds, 3),
            "era": rep.era.value if rep.era else None, "era_reason": rep.era_reason,
            "helper": {"form": rep.release.form, "checks": rep.release.checks},
            "counts": counts(rep), "sites": sites, "decoders": rep.decoders, "unparsed": rep.unparsed,
            "coverage": rep.coverage.to_json()}


def compare(a, b) -> list[dict]:
    """Sites (model, method, path/group, occurrence) whose verdict differs between two reports."""
    def keyed(rep):
        out, seen = {}, Counter()
        for v in rep.sites:
            k = (v.model, v.method, v.path.value, v.group_name)
            seen[k] += 1
            out[k + (seen[k],)] = v
        return out
    ka, kb = keyed(a), keyed(b)
    changes = []
    for k in sorted(set(ka) | set(kb)):
        va, vb = ka.get(k), kb.get(k)
        was, now = (va.verdict.value if va else "absent"), (vb.verdict.value if vb else "absent")
        if was != now:
            changes.append({"model": k[0], "method": k[1], "path": f"{k[2]}/{k[3]}", "before": was,
                            "after": now, "line_before": va.line if va else None,
                            "line_after": vb.line if vb else None})
    return changes


def compare_models(a, b) -> list[dict]:
    """Per MoE model file of A or B (by name): its row in each ("absent" where it has none)."""
    ra = {r.model: r for r in a.coverage.rows}
    rb = {r.model: r for r in b.coverage.rows}
    out = []
    for m in sorted(set(ra) | set(rb)):
        x, y = ra.get(m), rb.get(m)
        out.append({"model": m, "before": x.brief() if x else "absent", "after": y.brief() if y else "absent",
                    "kind_before": x.kind.value if x else "absent", "kind_after": y.kind.value if y else "absent",
                    "changed": (x.brief() if x else None) != (y.brief() if y else None)})
    return out


def compare_lines(a, b, models: list[dict]) -> list[str]:
    moved = sum(m["changed"] for m in models)
    lines = [f"MoE model files: {len(models)} in {a.label} or {b.label}; {moved} changed row; "
             f"{a.label}: {a.coverage.accounted}/{a.coverage.found} accounted for, "
             f"{b.label}: {b.coverage.accounted}/{b.coverage.found}"]
    width = max((len(m["model"]) for m in models), default=0)
    for m in models:
        arrow = "->" if m["changed"] else "=="
        lines.append(f"  {m['model']:<{width}}  {m['before']} {arrow} {m['after']}")
    return lines

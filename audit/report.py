"""Print an audit: a table (rich where installed, plain text otherwise), summary counts, JSON,
and the sites whose verdict changed between two targets. SARIF: audit/sarif.py.
"""
from __future__ import annotations

from collections import Counter

from .verdict import SiteVerdict

DIFFERS, NOT_UNDERSTOOD = SiteVerdict.DIFFERS, SiteVerdict.NOT_UNDERSTOOD

COLUMNS = ("model", "method", "line", "path", "verdict", "detail")


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
    console = Console(width=200, record=True)
    with console.capture() as cap:
        console.print(t)
    return cap.get()


def plain_table(rep) -> str:
    data = [COLUMNS] + rows(rep)
    widths = [max(len(r[i]) for r in data) for i in range(len(COLUMNS) - 1)]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(len(widths))) + "  " + r[-1] for r in data)


def to_json(rep) -> dict:
    sites = [{"model": v.model, "method": v.method, "file": v.file, "line": v.line, "path": v.path.value,
              "group": v.group_name, "verdict": v.verdict.value, "detail": v.detail, "note": v.note,
              "witness": v.witness, "reached_when": v.reach, "callers": v.callers} for v in rep.sites]
    return {"target": rep.label, "files": rep.files, "seconds": round(rep.seconds, 3),
            "era": rep.era.value if rep.era else None, "era_reason": rep.era_reason,
            "helper": {"form": rep.release.form, "checks": rep.release.checks},
            "counts": counts(rep), "sites": sites, "decoders": rep.decoders, "unparsed": rep.unparsed}


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

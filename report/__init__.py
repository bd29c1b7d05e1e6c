"""sumonce.report: `sumonce report OUT.html`, one self-contained offline page.

The top layer: it reads proto (the map's cells), spec (the proofs the map is checked against) and
audit (verdicts per release); it never imports torch or ray. Charts are pygal's server-side SVG,
inlined, so the page needs no script from anywhere (docs/REPORT.md says why pygal).
"""

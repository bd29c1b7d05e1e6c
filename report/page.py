"""Assemble the page: the map (proto + spec), the audit, the sweep and the performance charts,
through one jinja2 template with its styles and script inline. No file it writes refers to
anything outside itself."""
from __future__ import annotations

import datetime
import json
from importlib.resources import files
from dataclasses import dataclass, field

import jinja2

from sumonce import __version__
from sumonce.proto.validation import RULES
from sumonce.spec.findings import FINDINGS

from . import audit_view, sweep
from .mapdata import EP_MARK, RULE_NAMES, TP_MARK, EraMap, VersionMap, repro_templates
from .outcome import LEGEND, Outcome
from .panels import PANELS, SIZES


@dataclass
class Inputs:
    maps: list[VersionMap]
    releases: list = field(default_factory=list)
    sweep: list = field(default_factory=list)
    sweep_svg: str = ""
    perf: list = field(default_factory=list)
    seconds: float = 0.0
    era_maps: list[EraMap] = field(default_factory=list)


def summary(maps: list[VersionMap]) -> dict:
    proofs = [p for vm in maps for p in vm.proofs]
    witnesses = [w for vm in maps for w in vm.witnesses]
    return {
        "proved": sum(p.verdict == "proved" for p in proofs),
        "refuted": len({p.name for p in proofs if p.verdict == "refuted"} | {w.prop for w in witnesses}),
        "unexpected": [p.name for p in proofs if not p.expected],
        "checked": sum(p.in_scope for p in proofs),
        "disagree": sum(len(p.disagree) for p in proofs),
        "witnesses": len(witnesses),
        "witnesses_wrong": sum(w.cell.outcome.wrong for w in witnesses),
        "cells": sum(len(g.tokens) for vm in maps for g in vm.grids),
        "wrong": sum(g.wrong for vm in maps for g in vm.grids),
    }


def era_summary(era_maps: list[EraMap]) -> dict:
    """The 0.5.23 era's squares: how many, how many wrong."""
    return {"cells": sum(len(g.tokens) for em in era_maps for g in em.grids),
            "wrong": sum(g.wrong for em in era_maps for g in em.grids)}


def page_data(maps: list[VersionMap]) -> str:
    """The constants the page's script expands cell tokens with."""
    allowed = {r.name: r.allowed for r in RULES} | {
        "forward_state": "a forward SGLang can run",
        "era_0_5_23": "what 0.5.22 - 0.5.23 accept (proto.eras.accepts: --dwdp-size 1 or = tp, pp 1, no speculative decoding)",
        "scope_0_5_23": "what proto.models_0523 covers (CUDA or CPU, a2a none or a completing one, no input-scattered batch)"}
    return json.dumps({
        "words": {o.value: w for o, w, _ in LEGEND},
        "rules": [[n, allowed[n]] for n in RULE_NAMES],
        "findings": [f.name for f in FINDINGS],
        "sizes": list(SIZES),
        "variants": {vm.model.name: list(vm.model.variants) for vm in maps},
        "repro": repro_templates(maps),
    }, separators=(",", ":")).replace("</", "<\\/")


def render(inputs: Inputs) -> str:
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    template = env.from_string((files("sumonce.report") / "page.html.j2").read_text(encoding="utf-8"))
    models = []
    for vm in inputs.maps:
        if not models or models[-1][0] != vm.model:
            models.append((vm.model, []))
        models[-1][1].append(vm)
    for em in inputs.era_maps:  # NOTE: each model's 0.5.23 panels after its 0.5.11 guard versions
        next(versions for model, versions in models if model.name == em.model.name).append(em)
    return template.render(
        version=__version__, generated=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        legend=LEGEND, Outcome=Outcome, panels=PANELS, models=models, maps=inputs.maps,
        summary=summary(inputs.maps), era_summary=era_summary(inputs.era_maps), era_maps=inputs.era_maps,
        data=page_data(inputs.maps), findings=FINDINGS,
        releases=inputs.releases, matrix=audit_view.matrix(inputs.releases),
        verdict_class=audit_view.VERDICT_CLASS, sweep=inputs.sweep, sweep_svg=inputs.sweep_svg,
        mismatches=sweep.mismatches(inputs.sweep), words=sweep.words, perf=inputs.perf, seconds=inputs.seconds,
        tp_mark=TP_MARK, ep_mark=EP_MARK)

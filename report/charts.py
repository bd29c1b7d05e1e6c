"""pygal, configured for one offline page: SVG inlined in the HTML, no tooltip script fetched
from anywhere (pygal's default loads one from the web), the page's font and the outcome colours."""
from __future__ import annotations

import pygal
from pygal.style import Style

from .outcome import LEGEND

OUTCOME_COLOURS = tuple(colour for _, _, colour in LEGEND)
SERIES_COLOURS = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442")


def style(colours=SERIES_COLOURS) -> Style:
    return Style(background="white", plot_background="white", colors=colours,
                 font_family="system-ui, sans-serif", label_font_size=11, major_label_font_size=11,
                 legend_font_size=11, title_font_size=14)


def chart(kind, title: str, colours=SERIES_COLOURS, **options):
    """A pygal chart of `kind` (pygal.Line, pygal.StackedBar, ...) that renders without scripts."""
    return kind(title=title, style=style(colours), js=(), disable_xml_declaration=True,
                explicit_size=True, width=options.pop("width", 560), height=options.pop("height", 320),
                legend_at_bottom=True, legend_at_bottom_columns=options.pop("columns", 3),
                truncate_legend=-1, **options)


def svg(c) -> str:
    """The chart as an inline <svg> element."""
    return c.render(is_unicode=True)


LINE, XY, STACKED_BAR, BAR = pygal.Line, pygal.XY, pygal.StackedBar, pygal.Bar

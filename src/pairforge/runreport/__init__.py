"""What a person looks at after a run: the run report (one self-contained HTML page) and the dataset
card (``README.md`` with Hugging Face front matter), both made from the run directory alone.

- :mod:`.collect` gathers statistics in bounded memory (commit records + every sample's JSON, once);
- :mod:`.gallery` reads the few picked pairs; :mod:`.plots` draws the charts (hand-written SVG);
- :mod:`.page` renders ``report.html`` from the template in ``templates/``; :mod:`.card` writes the card.
"""
from __future__ import annotations

from pairforge.runreport.card import CARD_NAME, render_card, write_card
from pairforge.runreport.page import REPORT_NAME, render_report, write_report

__all__ = ["CARD_NAME", "REPORT_NAME", "render_card", "render_report", "write_card", "write_report", "write_report_and_card"]


def write_report_and_card(storage) -> tuple[str, str]:
    """Both, from one pass over the run directory: ``report.html`` and ``README.md``; returns their URIs."""
    from pairforge.runreport.collect import collect

    data = collect(storage)
    return write_report(storage, data=data), write_card(storage, data)

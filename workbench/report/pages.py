"""Writing the report: ``report.html`` (self-contained), ``report.md`` and ``trials.csv``."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.report.document import Report
from workbench.report.figures import _draw


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(no rows)_\n"
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(_cell(v).replace("|", "/") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body]) + "\n"


def _html_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "<p><em>(no rows)</em></p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline(text: str) -> str:
    """A note's Markdown as HTML: ``**bold**`` and `` `code` `` (commands to copy); inside
    code nothing else is read (an experiment named ``a**b`` stays as it is)."""
    parts = re.split(r"`([^`]+)`", html.escape(text, quote=False))
    return "".join(
        f"<code>{part}</code>"
        if k % 2
        else re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", part)
        for k, part in enumerate(parts)
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:.6em 0 1.4em;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}"
    "th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%}caption{font-weight:600;text-align:left;padding:4px 0}"
)


def write_report(report: Report, out: Path) -> list[Path]:
    """Draw the report into ``out``: report.html, report.md, trials.csv and the PNG figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    images: dict[str, str] = {}
    for section in report.sections:
        for figure in section.figures:
            fig = _draw(report, figure.removesuffix(".png"))
            path = out / figure
            # Tight: a long title or axis label widens the image instead of being cut off.
            fig.savefig(path, dpi=90, bbox_inches="tight")
            plt.close(fig)
            images[figure] = base64.b64encode(path.read_bytes()).decode("ascii")
            written.append(path)
    csv = out / "trials.csv"
    report.repeats.to_csv(csv, index=False)
    written.append(csv)

    md = [f"# {report.title}", ""]
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
    ]
    for section in report.sections:
        md += [f"## {section.title}", ""]
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        for note in section.notes:
            md += [note, ""]
            parts.append(f"<p>{_inline(note)}</p>")
        for caption, frame in section.tables:
            md += [f"**{caption}**", "", _markdown_table(frame)]
            parts.append(f"<h3>{html.escape(caption)}</h3>{_html_table(frame)}")
        for figure in section.figures:
            md += [f"![{figure}]({figure})", ""]
            parts.append(
                f"<figure><img alt='{figure}' src='data:image/png;base64,{images[figure]}'>"
                "</figure>"
            )
    figures = sum(len(section.figures) for section in report.sections)
    md += [
        "Files: trials.csv (one row per trial and repeat: `score` is that repeat's; "
        "`trial_score` and every other measure, `fit_seconds`, `epochs_run` and `test_*` "
        "among them, are the whole trial's, on each of its rows: add them up over one row "
        "per trial)" + (f", the {figures} PNG figures." if figures else "; no figures."),
        "",
    ]
    parts.append("</body></html>")
    (out / "report.md").write_text("\n".join(md))
    (out / "report.html").write_text("\n".join(parts))
    written += [out / "report.md", out / "report.html"]
    return written

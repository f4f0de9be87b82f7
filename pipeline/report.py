"""Self-contained HTML pages: one report per experiment, and an index comparing experiments.

Pictures are embedded (base64), so a report is one file that opens anywhere, offline, and can be
mailed or attached to a ticket.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd
import yaml

from pipeline.io import atomic_path
from pipeline.layout import FIGURE_KEYS, FIGURES

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figcaption { color: #555; font-size: 0.9em; max-width: 900px; }
img { max-width: 100%; image-rendering: pixelated; border: 1px solid #ddd; }
.warn { background: #fff3cd; padding: 0.6em 1em; border-left: 4px solid #e0a800; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
figure.broken::after { content: "This picture could not be shown."; color: #b00; }
"""

# Columns of the comparison table: (metrics.json key, header). Lower is better except P/R.
COLUMNS = [
    ("step", "steps"),
    ("swd", "SWD"),
    ("swd_real_floor", "SWD floor"),
    ("colour", "colour"),
    ("colour_real_floor", "colour floor"),
    ("fid", "FID"),
    ("fid_real_floor", "FID floor"),
    ("kid", "KID"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("copy_fraction", "copy fraction"),
    ("features", "features"),
]


def _data_uri(path: Path) -> str:
    kind = {".png": "image/png", ".gif": "image/gif"}[path.suffix.lower()]
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def summary_row(metrics: dict) -> dict:
    row = {key: metrics.get(key) for key, _ in COLUMNS}
    row["copy_fraction"] = (metrics.get("memorisation") or {}).get("copy_fraction")
    return row


def _table(rows: dict[str, dict], link: bool = False) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in COLUMNS)
    body = []
    for name, row in rows.items():
        label = f'<a href="{name}/report.html">{name}</a>' if link else html.escape(name)
        cells = "".join(f"<td>{_cell(row.get(k))}</td>" for k, _ in COLUMNS)
        body.append(f"<tr><td>{label}</td>{cells}</tr>")
    return f"<table><tr><th>experiment</th>{head}</tr>{''.join(body)}</table>"


def _warnings(metrics: dict) -> list[str]:
    out = []
    if metrics.get("fid_note"):
        out.append(metrics["fid_note"])
    memo = metrics.get("memorisation") or {}
    if memo.get("copies_training_data"):
        out.append(
            f"The generator may copy training crops: {memo['copy_fraction']:.0%} of samples are "
            "nearer to a training crop than nearly all held-out crops are (see the copy check)."
        )
    if metrics.get("standard_weights") is False:
        out.append("FID/KID use non-standard Inception weights: not comparable with papers.")
    return out


def experiment_report(
    name: str, *, metrics_path: Path, figures: dict[str, Path], settings: dict, out: Path
) -> None:
    """An experiment's page: its metrics and every figure of FIGURES (pipeline/layout.py), each
    given by name in `figures`; a name missing or unknown is an error, not a page without it."""
    if sorted(figures) != sorted(FIGURE_KEYS):
        missing, unknown = set(FIGURE_KEYS) - set(figures), set(figures) - set(FIGURE_KEYS)
        raise ValueError(
            f"{out}: the report shows {FIGURE_KEYS}; missing {sorted(missing)}, "
            f"unknown {sorted(unknown)}"
        )
    metrics = json.loads(Path(metrics_path).read_text())
    parts = [f"<h1>{html.escape(name)}</h1>", _table({name: summary_row(metrics)})]
    parts += [f'<p class="warn">{html.escape(w)}</p>' for w in _warnings(metrics)]
    for key, title, caption in FIGURES:
        path = figures[key]
        parts.append(
            f'<figure id="{key}"><h2>{title}</h2><img alt="{key}" src="{_data_uri(Path(path))}" '
            "onerror=\"this.closest('figure').classList.add('broken')\">"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    parts.append("<h2>Metrics</h2><pre>" + html.escape(json.dumps(metrics, indent=1)) + "</pre>")
    parts.append(
        "<h2>Settings</h2><pre>" + html.escape(yaml.safe_dump(settings, sort_keys=False)) + "</pre>"
    )
    _write_page(f"{name}: GAN report", parts, out)


def sweep_report(
    name: str, *, table_csv: Path, plot_png: Path, samples_png: Path, winner: str, out: Path
) -> None:
    """A sweep's page: the runs ranked, the comparison plot, the best run's samples, and a link
    to every run's own report."""
    table = pd.read_csv(table_csv, index_col="run")
    rows = "".join(
        f'<tr><td><a href="runs/{html.escape(run)}/report.html">{html.escape(run)}</a></td>'
        + "".join(f"<td>{_cell(v if pd.notna(v) else None)}</td>" for v in row)
        + "</tr>"
        for run, row in table.iterrows()
    )
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    parts = [
        f"<h1>{html.escape(name)}: sweep of {len(table)} runs</h1>",
        f"<p>Best run: <b>{html.escape(winner)}</b>; its samples are below and its metrics are "
        "the experiment's metrics.json.</p>",
        f"<table><tr><th>run</th>{head}</tr>{rows}</table>",
        f'<figure id="comparison"><img alt="comparison" src="{_data_uri(plot_png)}"></figure>',
        f'<figure id="samples"><h2>Samples of {html.escape(winner)}</h2>'
        f'<img alt="samples" src="{_data_uri(samples_png)}"></figure>',
    ]
    _write_page(f"{name}: sweep", parts, out)


def experiments_index(metrics_paths: list[Path], *, out_html: Path, out_csv: Path) -> pd.DataFrame:
    """The comparison of every experiment with metrics: a CSV and a page linking each report."""
    rows = {
        Path(p).parent.name: summary_row(json.loads(Path(p).read_text()))
        for p in sorted(metrics_paths)
    }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=[k for k, _ in COLUMNS])
    table.index.name = "experiment"
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp)
    parts = [
        "<h1>Experiments</h1>",
        "<p>Lower is better for SWD, FID, KID and the copy fraction; higher for precision and "
        "recall. A floor is what real held-out crops score.</p>",
        _table(rows, link=True),
    ]
    _write_page("Experiments", parts, out_html)
    return table


def _write_page(title: str, parts: list[str], out: Path) -> None:
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
    with atomic_path(out, suffix=".html") as tmp:
        tmp.write_text(page)

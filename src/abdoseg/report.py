"""The report step: one self-contained HTML file (figures, slices and videos embedded) a person opens in a browser."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path

import jinja2
import pandas as pd

from . import __version__
from . import labels as L
from . import files


def data_uri(path: str | os.PathLike, mime: str) -> str:
    """A file as a data: URI, so that the report is one file that can be mailed or archived."""
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def build_report(out_path: str | os.PathLike, summary_path: str, per_case_path: str, train_log_path: str,
                 figures: dict[str, str], cases: list[dict], params: dict, manifest: pd.DataFrame,
                 real_ct: tuple[str, str] | None = None, provenance: dict | None = None) -> None:
    """Render the report. `cases`: one dict per test case with keys case, video, slices (paths); `real_ct`: the
    real-CT check's metrics JSON and figure; `provenance`: abdoseg.provenance.collect's account of the run."""
    summary = json.loads(Path(summary_path).read_text())
    per_case = pd.read_csv(per_case_path)
    log = pd.read_csv(train_log_path)
    organs = [o for o in L.ORGANS.values() if o in summary]
    wide = per_case.pivot(index="case", columns="organ", values="dice").reindex(columns=organs)
    manifest = manifest.set_index("case")
    case_rows = []
    for c in cases:
        name = c["case"]
        case_rows.append({
            "case": name,
            "dice": {o: wide.loc[name, o] if name in wide.index else None for o in organs},
            "video": data_uri(c["video"], "video/mp4"),
            "slices": data_uri(c["slices"], "image/png"),
            "info": manifest.loc[name].to_dict() if name in manifest.index else {},
        })
    env = jinja2.Environment(loader=jinja2.PackageLoader("abdoseg", "templates"), autoescape=True)
    html = env.get_template("report.html.j2").render(
        version=__version__, created=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary, organs=organs, colours={n: L.COLOURS[i] for i, n in L.ORGANS.items()},
        figures={k: data_uri(v, "image/png") for k, v in figures.items()}, cases=case_rows,
        params=params, best=log.loc[log.dice_mean.idxmax()].to_dict() if log.dice_mean.notna().any() else None,
        epochs=int(log.epoch.max()), train_seconds=float(log.seconds.sum()),
        real_ct=None if real_ct is None else {"metrics": json.loads(Path(real_ct[0]).read_text()),
                                              "figure": data_uri(real_ct[1], "image/png")},
        provenance=provenance,
    )
    with files.atomic_path(out_path) as tmp:
        tmp.write_text(html, encoding="utf-8")

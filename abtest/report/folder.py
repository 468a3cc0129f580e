"""A run folder's report files: results.json, lift.csv, report.md/html and the plots.

The folder is replaced as a whole (:mod:`abtest.report.outdir`): every file is rendered into
a sibling staging folder, which then takes the folder's place in one step, so a failing or
killed render leaves the previous report whole and a reader never sees files of two runs.

- :func:`render_into`: write every report file into a (fresh) folder; returns name → path.
- :func:`write_report`: replace a run folder's report with the one of `results`.
- :func:`read_results`: the typed results of a run folder's results.json.
- :func:`render_run`: re-render a run folder from its results.json.
"""

from __future__ import annotations

import json
from pathlib import Path

from abtest.online.results import ExperimentResults
from abtest.online.results_json import from_json, to_json
from abtest.report import plots as figures
from abtest.report.document import page
from abtest.report.outdir import replacing
from abtest.report.tables import write_lift_csv
from core.errors import UserError
from core.fileio import read_json

# the files a report render writes (a plot only when the results have its data)
REPORT_FILES = frozenset(
    {"results.json", "lift.csv", "report.md", "report.html", *figures.PLOT_FILES}
)
EVENTS = "events.parquet"  # `run --save-events`: the experiment's exposures
RUN_FILES = REPORT_FILES | {EVENTS}  # what `run` writes: a new run replaces all of them


def render_into(results: ExperimentResults, folder: Path) -> dict[str, Path]:
    """Write results.json, lift.csv, report.md, report.html and the plots into `folder`
    (a staging folder: nobody reads it until it is complete)."""
    plots = figures.plots_for(results)
    doc = json.dumps(to_json(results), indent=2, sort_keys=False, allow_nan=False) + "\n"
    texts = {"results.json": doc, **page(results, plots)}
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    write_lift_csv(results, folder / "lift.csv")
    for name, plot in plots.items():
        figures.save_png(plot(results), folder / name)
    return {name: folder / name for name in [*texts, "lift.csv", *plots]}


def write_report(
    results: ExperimentResults, out_dir: str | Path, owned=REPORT_FILES
) -> dict[str, Path]:
    """Replace the report in `out_dir` with the one of `results`; returns name → path.

    The files named in `owned` are replaced together (a plot of the old report that the new
    results have no data for goes); other files in `out_dir` (e.g. ``events.parquet``) stay.
    An error leaves `out_dir` as it was.
    """
    out_dir = Path(out_dir)
    with replacing(out_dir, owned) as stage:
        names = render_into(results, stage)
    return {name: out_dir / name for name in names}


def read_results(run_dir: str | Path) -> ExperimentResults:
    """The results in `run_dir`/results.json; UserError if there are none or they are bad."""
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise UserError(f"run folder {run_dir} does not exist")
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} is not a folder")
    path = run_dir / "results.json"
    if not path.is_file():
        raise UserError(f"{run_dir} has no results.json: not a run folder")
    return from_json(read_json(path), source=str(path))


def render_run(run_dir: str | Path) -> dict[str, Path]:
    """Re-render every file of a run folder from its results.json."""
    return write_report(read_results(run_dir), run_dir)

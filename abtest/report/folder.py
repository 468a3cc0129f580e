"""A run folder's report files: results.json, lift.csv, report.md/html and the plots.

Every file of a report is written to a temporary name first and all of them are renamed
into place only after the last one rendered, so a failing re-render leaves the previous
report whole.

- :func:`write_report`: write every file of a run folder; returns name → path.
- :func:`read_results`: the typed results of a run folder's results.json.
- :func:`render_run`: re-render a run folder from its results.json.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from abtest.online.results import ExperimentResults
from abtest.online.results_json import from_json, to_json
from abtest.report import plots as figures
from abtest.report.document import page
from abtest.report.tables import write_lift_csv
from core.errors import UserError
from core.fileio import atomic_path


def write_report(results: ExperimentResults, out_dir: str | Path) -> dict[str, Path]:
    """Write results.json, lift.csv, report.md, report.html and the plots into `out_dir`.

    Everything is rendered to temporary files first and renamed into place only when all of
    them succeeded, so an error leaves an existing report in `out_dir` as it was.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"report folder {out_dir} is a file, not a folder")
    plots = figures.plots_for(results)
    doc = json.dumps(to_json(results), indent=2, sort_keys=False, allow_nan=False) + "\n"
    texts = {"results.json": doc, **page(results, plots)}
    paths = {name: out_dir / name for name in [*texts, "lift.csv", *plots]}
    with contextlib.ExitStack() as stack:
        # Each atomic_path renames its temp file when the stack unwinds without an error.
        tmp = {name: stack.enter_context(atomic_path(path)) for name, path in paths.items()}
        for name, text in texts.items():
            tmp[name].write_text(text, encoding="utf-8")
        write_lift_csv(results, tmp["lift.csv"])
        for name, plot in plots.items():
            figures.save_png(plot(results), tmp[name])
    for stale in set(figures.PLOT_FILES) - set(plots):
        # A plot a previous render drew from data these results no longer have.
        with contextlib.suppress(FileNotFoundError):
            (out_dir / stale).unlink()
    return paths


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
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    return from_json(doc, source=str(path))


def render_run(run_dir: str | Path) -> dict[str, Path]:
    """Re-render every file of a run folder from its results.json."""
    return write_report(read_results(run_dir), run_dir)

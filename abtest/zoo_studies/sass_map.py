"""The SASS map: where SASS beats the baselines, over a grid of one target scenario's
``systematic_shift`` × ``traffic_share`` (the other scenarios as configured, their shares
scaled to fill the rest).

Each cell is its own world (its own logs, cached by config fingerprint) on which every model
is trained for every seed (checkpoints cached by data hash) and scored offline in the target
scenario. Cells are independent jobs: in turn, or on Ray with ``workers`` > 0 (the optional
extra; :func:`abtest.online.scale`'s rules for joining a cluster apply). The cells of one
map share the world's seed, so the same users and scenario transforms appear in every cell:
the grid varies only the two knobs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tqdm import tqdm

from abtest.ray_jobs import ray_session
from abtest.zoo_studies.estimates import MeanSe, paired_difference
from abtest.zoo_studies.scoring import STUDY_METRICS, Variant, score_variants
from core.config import Config, config_from_dict
from core.errors import UserError
from models.train import TrainConfig

SHIFTS = (0.0, 0.5, 0.9)
SHARES = (0.01, 0.05, 0.20)
MAP_MODELS = ("mixed", "star", "sass_base", "sass", "zeus")
DEFAULT_TARGET = "related_detail"


@dataclass(frozen=True)
class MapCell:
    """One world of the grid: every model's scores in the target scenario."""

    shift: float
    share: float
    scores: dict[str, dict[str, MeanSe]]  # model -> metric -> over seeds
    requests: int  # validation requests with a click in the target scenario
    data_hash: str
    seconds: float  # wall time of the cell (generation, training, evaluation)

    def winner(self, metric: str) -> str | None:
        known = {m: s[metric].mean for m, s in self.scores.items() if s[metric].known}
        return max(known, key=known.get) if known else None

    def sass_minus(self, other: str, metric: str) -> MeanSe:
        return paired_difference(self.scores["sass"][metric], self.scores[other][metric])

    def best_other(self, metric: str) -> str | None:
        """The best model other than SASS in this cell."""
        known = {m: s[metric].mean for m, s in self.scores.items()
                 if m != "sass" and s[metric].known}  # fmt: skip
        return max(known, key=known.get) if known else None


@dataclass(frozen=True)
class SassMap:
    target: str
    shifts: tuple[float, ...]
    shares: tuple[float, ...]
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    cells: tuple[MapCell, ...]  # shift-major: cells[i * len(shares) + j]
    config_fingerprint: str

    def cell(self, shift: float, share: float) -> MapCell:
        return next(c for c in self.cells if c.shift == shift and c.share == share)


def cell_config(base: Config, target: str, shift: float, share: float) -> Config:
    """`base` with the target scenario's systematic_shift and traffic_share set, and the
    other scenarios' shares scaled so that all still sum to 1."""
    tree = base.to_dict()
    scenarios = tree["scenarios"]
    others = sum(s["traffic_share"] for s in scenarios if s["name"] != target)
    for s in scenarios:
        if s["name"] == target:
            s["systematic_shift"], s["traffic_share"] = shift, share
        else:
            s["traffic_share"] = s["traffic_share"] * (1 - share) / others
    total = sum(s["traffic_share"] for s in scenarios)
    scenarios[-1]["traffic_share"] += 1.0 - total  # float rounding; validation wants 1 +- 1e-6
    return config_from_dict(tree, f"sass-map cell ({target}: shift {shift}, share {share})")


def check_map_args(base: Config, target: str, models: Sequence[str], shares: Sequence[float]):
    if target not in base.scenario_names:
        raise UserError(
            f"--target: unknown scenario {target!r}; the config's scenarios: "
            f"{', '.join(base.scenario_names)}"
        )
    if len(base.scenarios) < 2:
        raise UserError("the SASS map needs a config with at least 2 scenarios")
    if "sass" not in models or len(models) < 2:
        raise UserError("--models must include sass and at least one model to compare it with")
    bad = [s for s in shares if not 0 < s < 1]
    if bad:
        raise UserError(f"--shares must be in (0, 1), got {', '.join(map(str, bad))}")


def run_cell(
    config_dict: dict,
    target: str,
    shift: float,
    share: float,
    models: Sequence[str],
    seeds: Sequence[int],
    train_dict: dict,
    progress: bool,
) -> MapCell:
    """One cell (plain arguments, so that a Ray worker can run it)."""
    t0 = time.perf_counter()
    base = config_from_dict(config_dict, "sass-map config")
    cfg = cell_config(base, target, shift, share)
    variants = [Variant(m, m) for m in models]
    world = score_variants(cfg, variants, seeds, TrainConfig(**train_dict), progress=progress)
    scores = {m: world.scores[m][target] for m in models}
    return MapCell(
        shift,
        share,
        scores,
        world.requests.get(target, 0),
        world.data_hash,
        time.perf_counter() - t0,
    )


def sass_map(
    base: Config,
    target: str = DEFAULT_TARGET,
    models: Sequence[str] = MAP_MODELS,
    seeds: Sequence[int] = (0,),
    shifts: Sequence[float] = SHIFTS,
    shares: Sequence[float] = SHARES,
    train_cfg: TrainConfig | None = None,
    workers: int = 0,
    progress: bool = True,
) -> SassMap:
    """The whole grid, cell by cell (or on Ray with `workers` > 0)."""
    check_map_args(base, target, models, shares)
    for r in shifts:  # every cell's config is valid before the first cell trains
        for s in shares:
            cell_config(base, target, r, s)
    train_cfg = train_cfg or TrainConfig()
    grid = [(r, s) for r in shifts for s in shares]
    args = (base.to_dict(), target)
    rest = (list(models), list(seeds), train_cfg.to_dict())
    if workers:
        cells = _on_ray(grid, args, rest, workers, progress)
    else:
        cells = []
        bar = tqdm(grid, desc="sass-map cells", disable=None if progress else True)
        for r, s in bar:
            bar.set_postfix_str(f"shift {r}, share {s:.0%}")
            cell = run_cell(*args, r, s, *rest, progress)
            cells.append(cell)
            _say(cell, progress)
    return SassMap(
        target,
        tuple(shifts),
        tuple(shares),
        tuple(models),
        tuple(seeds),
        tuple(cells),
        base.fingerprint(),
    )


def _say(cell: MapCell, progress: bool) -> None:
    if progress:
        m = STUDY_METRICS[0]
        best = cell.winner(m)
        print(
            f"cell shift {cell.shift} share {cell.share:.1%}: best {best} ({m}); "
            f"{cell.seconds:.0f} s",
            file=sys.stderr,
        )


def _on_ray(grid, args, rest, workers: int, progress: bool) -> list[MapCell]:
    with ray_session(workers, log_to_driver=progress) as ray:
        task = ray.remote(run_cell)
        futures = [task.remote(*args, r, s, *rest, False) for r, s in grid]
        index = {f: i for i, f in enumerate(futures)}
        cells: list[MapCell | None] = [None] * len(grid)
        pending = list(futures)
        with tqdm(
            total=len(grid), desc="sass-map cells", disable=None if progress else True
        ) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                cell = ray.get(done[0])
                cells[index[done[0]]] = cell
                bar.update(1)
                _say(cell, progress)
        return [c for c in cells if c is not None]

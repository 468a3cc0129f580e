"""The SASS map's cell configs, argument checks and per-cell comparisons (no training), and
the cells as Ray tasks giving the in-turn result."""

from __future__ import annotations

import math

import pytest

from abtest.zoo_studies.estimates import MeanSe
from abtest.zoo_studies.sass_map import MapCell, cell_config, check_map_args, sass_map
from core.config import config_from_dict
from core.errors import UserError
from models.train import TrainConfig
from tests.conftest import tiny_tree

TARGET = "related_detail"


@pytest.mark.parametrize(("shift", "share"), [(0.0, 0.01), (0.9, 0.2), (1.0, 0.5)])
def test_cell_config_sets_the_target_and_scales_the_others(tiny_config, shift, share):
    cell = cell_config(tiny_config, TARGET, shift, share)
    before = {s.name: s for s in tiny_config.scenarios}
    after = {s.name: s for s in cell.scenarios}
    assert list(after) == list(before)
    assert after[TARGET].systematic_shift == shift
    assert after[TARGET].traffic_share == pytest.approx(share, abs=1e-9)
    assert math.fsum(s.traffic_share for s in cell.scenarios) == pytest.approx(1.0, abs=1e-9)
    others = [n for n in before if n != TARGET]
    scale = (1 - share) / math.fsum(before[n].traffic_share for n in others)
    for n in others:  # proportional: the others keep their ratios
        assert after[n].traffic_share == pytest.approx(before[n].traffic_share * scale)
        assert after[n].systematic_shift == before[n].systematic_shift
    # nothing else changes: scenarios apart from the two knobs, and every other section
    strip = ("traffic_share", "systematic_shift")
    tree, base = cell.to_dict(), tiny_config.to_dict()
    for new, old in zip(tree.pop("scenarios"), base.pop("scenarios"), strict=True):
        assert {k: v for k, v in new.items() if k not in strip} == {
            k: v for k, v in old.items() if k not in strip
        }
    assert tree == base


def test_the_last_scenario_as_target_keeps_the_sum_at_one(tiny_config):
    last = tiny_config.scenario_names[-1]
    cell = cell_config(tiny_config, last, 0.5, 0.33)
    assert math.fsum(s.traffic_share for s in cell.scenarios) == pytest.approx(1.0, abs=1e-9)
    assert cell.scenarios[-1].traffic_share == pytest.approx(0.33, abs=1e-9)


def _tiny():
    return config_from_dict(tiny_tree(), "tiny")


def _one_scenario():
    tree = tiny_tree()
    tree["scenarios"] = tree["scenarios"][:1]
    tree["scenarios"][0]["traffic_share"] = 1.0
    return config_from_dict(tree, "one scenario")


@pytest.mark.parametrize(
    ("config", "target", "models", "shares", "match"),
    [
        (_tiny, "nope", ["mixed", "sass"], [0.1],
         r"--target: unknown scenario 'nope'; the config's scenarios: home_feed, .*related_detail"),
        (_one_scenario, "home_feed", ["mixed", "sass"], [0.1], r"at least 2 scenarios"),
        (_tiny, TARGET, ["mixed", "star"], [0.1], r"--models must include sass"),
        (_tiny, TARGET, ["sass"], [0.1], r"at least one model to compare it with"),
        (_tiny, TARGET, ["mixed", "sass"], [0.1, 0.0], r"--shares must be in \(0, 1\), got 0.0"),
        (_tiny, TARGET, ["mixed", "sass"], [1.0, 1.5], r"got 1.0, 1.5"),
    ],
)  # fmt: skip
def test_check_map_args_refuses(config, target, models, shares, match):
    with pytest.raises(UserError, match=match):
        check_map_args(config(), target, models, shares)


def test_check_map_args_accepts_a_good_grid(tiny_config):
    check_map_args(tiny_config, TARGET, ["mixed", "sass"], [0.01, 0.5])


def _cell(recall: dict[str, list[float]]) -> MapCell:
    scores = {m: {"recall@50": MeanSe.of(v), "ndcg@50": MeanSe.of([x / 2 for x in v])}
              for m, v in recall.items()}  # fmt: skip
    return MapCell(0.5, 0.05, scores, 120, "abc", 3.0)


def test_winner_best_other_and_paired_difference_on_a_hand_built_cell():
    cell = _cell({"mixed": [0.20, 0.22], "star": [0.25, 0.27], "sass": [0.24, 0.30]})
    assert cell.winner("recall@50") == "sass"  # mean 0.27 against 0.26 and 0.21
    assert cell.best_other("recall@50") == "star"
    d = cell.sass_minus("star", "recall@50")
    assert d.values == pytest.approx((-0.01, 0.03))
    assert d.mean == pytest.approx(0.01) and d.se == pytest.approx(0.02)
    assert cell.sass_minus("mixed", "ndcg@50").mean == pytest.approx(0.03)


def test_unknown_scores_are_left_out_of_winner_and_best_other():
    cell = _cell({"mixed": [math.nan, 0.2], "star": [0.1, 0.1], "sass": [0.05, 0.05]})
    assert cell.winner("recall@50") == "star" and cell.best_other("recall@50") == "star"
    nothing = _cell({"mixed": [math.nan], "sass": [math.nan]})
    assert nothing.winner("recall@50") is None and nothing.best_other("recall@50") is None


@pytest.mark.slow  # starts a local Ray (about 20 s on 2 cores); CI runs the slow tests
def test_cells_as_ray_tasks_give_the_in_turn_result(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})  # a validation split
    config = config_from_dict(tree, "tiny, 3 pre-period days")
    train = TrainConfig(max_epochs=1, pretrain_epochs=1, pretrain_rows=2000, threads=1)
    kwargs = {"models": ("mixed", "sass"), "seeds": (3,), "shifts": (0.0,),
              "shares": (0.2, 0.5), "train_cfg": train, "progress": False}  # fmt: skip
    maps = {}
    for workers in (0, 2):  # separate caches: the Ray run must train, not load
        monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / f"cache{workers}"))
        maps[workers] = sass_map(config, TARGET, workers=workers, **kwargs)
    in_turn, on_ray = maps[0], maps[2]
    assert [(c.shift, c.share) for c in on_ray.cells] == [(0.0, 0.2), (0.0, 0.5)]
    for a, b in zip(in_turn.cells, on_ray.cells, strict=True):
        assert a.data_hash == b.data_hash
        for model in ("mixed", "sass"):
            for metric in ("recall@50", "ndcg@50"):
                assert a.scores[model][metric].values == b.scores[model][metric].values

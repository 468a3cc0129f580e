"""Property tests (hypothesis): the readers and the statistics never crash on bad or odd input.

* ``config_from_dict`` on mutated trees of the default config builds a valid ``Config`` or
  raises ``ConfigError``, never another exception;
* ``validate_logs`` on small logs with random nulls, NaN, inf, negative values, bad
  propensities and wrong dtypes either returns a clean log or raises ``LogError`` naming a
  column;
* the statistics on degenerate data (empty arms, one user per arm, zero clicks, all-equal
  and huge values) raise nothing but ``UserError``, emit no warnings, and return p-values in
  [0, 1] (or NaN) and CIs with low <= high.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from abtest.config import Config, ConfigError, config_from_dict, load_config
from abtest.errors import UserError
from abtest.stats import (
    Moments,
    adjust_p_values,
    mean_test,
    msprt_p_values,
    ratio_test,
    srm_test,
)
from simulator.logs import LOG_SCHEMA, LogError, validate_logs
from tests.conftest import default_tree

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    """A warning printed by a command breaks its one-line error contract: none allowed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------------------- config

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _mutate(tree, data) -> None:
    """One random change somewhere in the tree: replace, scale, delete or add a key."""
    node = tree
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        op = data.draw(st.sampled_from(["replace", "scale", "delete", "add"]))
        if op == "replace":
            node[key] = data.draw(VALUES)
        elif op == "scale" and isinstance(child, int | float) and not isinstance(child, bool):
            node[key] = child * data.draw(st.sampled_from([-1, 0, 0.5, 2, 1e6, 1e300]))
        elif op == "delete":
            del node[key]
        elif isinstance(node, dict):
            node[data.draw(st.text(min_size=1, max_size=6))] = data.draw(VALUES)
        else:
            node.append(data.draw(VALUES))
        return


@FAST
@given(st.data())
def test_mutated_configs_build_or_raise_config_error(data):
    tree = default_tree()
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(tree, data)
    try:
        cfg = config_from_dict(tree, "mutated")
    except ConfigError as exc:
        assert exc.problems and str(exc).startswith("invalid config mutated: ")
        assert all(":" in p for p in exc.problems)  # each problem names its key path
        return
    assert isinstance(cfg, Config)
    assert len(cfg.fingerprint()) == 16  # a valid config serialises (caches key on it)
    assert set(cfg.experiment.allocation) == {"control", "treatment"}


@FAST
@given(st.one_of(st.text(max_size=200), VALUES.map(repr)))
def test_any_config_text_loads_or_raises_user_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


# ---------------------------------------------------------------------------- logs


def _log(n_req: int = 4, k: int = 3) -> pl.DataFrame:
    n = n_req * k
    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    req = np.repeat(np.arange(n_req), k)
    return pl.DataFrame(
        {
            "request_id": req,
            "session_id": req // 2,
            "timestamp": [t0 + dt.timedelta(seconds=int(r) * 10) for r in req],
            "user_id": req % 3,
            "scenario": np.where(req % 2 == 0, "a", "b"),
            "item_id": np.arange(n),
            "position": np.tile(np.arange(k), n_req),
            "click": (np.arange(n) % 4 == 0).astype(np.int8),
            "watch_time": np.linspace(0.0, 30.0, n),
            "propensity": np.full(n, 0.25),
            "policy": np.where(req == 0, "uniform", "logging"),
        },
        schema=LOG_SCHEMA,
    )


BAD_VALUES = {
    "numeric": [None, float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1.0, 1.5, 1e300],
    "integer": [None, -1, 0, 1, 2, 2**40],
    "text": [None, "", "a", "c", "uniform"],
}


@FAST
@given(st.data())
def test_validate_logs_returns_a_clean_log_or_names_a_column(data):
    df = _log()
    for _ in range(data.draw(st.integers(1, 4))):
        col = data.draw(st.sampled_from(list(LOG_SCHEMA)))
        kind = "text" if col in ("scenario", "policy") else "numeric"
        kind = "integer" if LOG_SCHEMA[col].is_integer() else kind
        op = data.draw(st.sampled_from(["set", "set", "set", "cast", "drop"]))
        if op == "drop":
            df = df.drop(col) if col in df.columns else df
            continue
        if col not in df.columns:
            continue
        if op == "cast":
            to = data.draw(st.sampled_from([pl.String, pl.Float64, pl.Int32, pl.UInt8]))
            df = df.with_columns(pl.col(col).cast(to, strict=False))
            continue
        if col == "timestamp":
            continue  # timestamps: cast above (to text, numbers) and the request rules below
        row = data.draw(st.integers(0, df.height - 1))
        value = data.draw(st.sampled_from(BAD_VALUES[kind]))
        dtype = df.schema[col]
        values = df[col].to_list()
        values[row] = value
        df = df.with_columns(pl.Series(col, values, dtype=dtype, strict=False))
    try:
        out = validate_logs(df, scenarios=["a", "b"], source="t")
    except LogError as exc:
        msg = str(exc)
        assert msg.startswith("t: ")
        assert any(f"'{c}'" in msg or c in msg for c in LOG_SCHEMA), msg
        return
    assert out.schema == pl.Schema(LOG_SCHEMA)
    for c in ("request_id", "user_id", "item_id", "click", "position", "scenario"):
        assert out[c].null_count() == 0
    assert out["click"].is_in([0, 1]).all() and (out["position"] >= 0).all()
    wt, pr = out["watch_time"].drop_nulls(), out["propensity"].drop_nulls()
    assert wt.is_finite().all() and (wt >= 0).all()
    assert pr.is_finite().all() and ((pr > 0) & (pr <= 1)).all()
    assert not out.select(pl.struct("request_id", "position").is_duplicated()).to_series().any()


# ---------------------------------------------------------------------------- statistics

FLOATS = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e150, 1e300, -1e300]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


@st.composite
def arm(draw, k: int, ratio: bool) -> np.ndarray:
    """Per-user rows of one arm: 0, 1 or a few users; all-equal, zero or huge values."""
    n = draw(st.sampled_from([0, 1, 1, 2, 3, 7]))
    mode = draw(st.sampled_from(["equal", "zeros", "random"]))
    if mode == "equal":
        x = np.full((n, k), draw(FLOATS))
    elif mode == "zeros":
        x = np.zeros((n, k))
    else:
        x = draw(hnp.arrays(np.float64, (n, k), elements=FLOATS))
    if ratio:  # (clicks, impressions, pre clicks, pre impressions): counts, clicks <= shown
        x = np.abs(x)
        for num, den in ((0, 1), (2, 3))[: k // 2]:
            x[:, num] = np.minimum(x[:, num], x[:, den])
        if draw(st.booleans()):
            x[:, 0::2] = 0.0  # zero clicks
    return x


def _check_lift(res, n_c: int, n_t: int) -> None:
    assert (0.0 <= res.p_value <= 1.0) or math.isnan(res.p_value), res
    for lo, hi in ((res.ci_low, res.ci_high), (res.abs_ci_low, res.abs_ci_high)):
        if math.isfinite(lo) and math.isfinite(hi):
            assert lo <= hi, res
    assert (res.n_control, res.n_treatment) == (n_c, n_t)
    assert isinstance(res.significant, bool)


@FAST
@given(st.booleans(), st.data())
def test_mean_test_on_degenerate_data(cuped, data):
    k = 2 if cuped else 1
    c, t = data.draw(arm(k, False)), data.draw(arm(k, False))
    res = mean_test(Moments.from_array(c), Moments.from_array(t), cuped=cuped)
    _check_lift(res, len(c), len(t))


@FAST
@given(st.booleans(), st.data())
def test_ratio_test_on_degenerate_data(cuped, data):
    k = 4 if cuped else 2
    c, t = data.draw(arm(k, True)), data.draw(arm(k, True))
    res = ratio_test(Moments.from_array(c), Moments.from_array(t), cuped=cuped)
    _check_lift(res, len(c), len(t))


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["control", "treatment", "holdout"]),
        st.one_of(st.integers(0, 3), st.integers(0, 10**15)),
        min_size=2,
    ),
    st.lists(st.floats(1e-9, 1.0), min_size=3, max_size=3),
)
def test_srm_test_on_degenerate_counts(users, shares):
    expected = dict(zip(["control", "treatment", "holdout"], shares, strict=True))
    expected = {a: expected[a] for a in users}
    res = srm_test(users, expected)
    assert (0.0 <= res.p_value <= 1.0) or math.isnan(res.p_value)
    assert isinstance(res.flagged, bool)
    assert not (res.flagged and math.isnan(res.p_value))


@FAST
@given(
    st.dictionaries(st.sampled_from(["control", "treatment"]), st.integers(0, 5), min_size=2),
    st.sampled_from([0.0, -0.5, float("nan"), float("inf")]),
)
def test_srm_test_rejects_bad_shares_with_user_error(users, share):
    with pytest.raises(UserError, match=r"expected\["):
        srm_test(users, {"control": share, "treatment": 0.5})


P_VALUES = st.one_of(st.floats(0.0, 1.0), st.just(float("nan")), st.sampled_from([0.0, 1.0]))


@FAST
@given(st.lists(P_VALUES, max_size=20), st.sampled_from(["bh", "holm"]))
def test_adjusted_p_values_stay_in_range(p, method):
    out = adjust_p_values(p, method)
    raw = np.array(p, dtype=float)
    assert out.shape == raw.shape
    assert np.array_equal(np.isnan(out), np.isnan(raw))
    ok = ~np.isnan(out)
    assert ((out[ok] >= 0) & (out[ok] <= 1)).all()
    assert (out[ok] >= raw[ok] - 1e-12).all()


@FAST
@given(st.lists(st.one_of(P_VALUES, st.sampled_from([-0.1, 1.1, float("inf")])), min_size=1))
def test_adjust_p_values_rejects_bad_input_with_user_error(p):
    if all(math.isnan(x) or 0 <= x <= 1 for x in p):
        adjust_p_values(p)
        return
    with pytest.raises(UserError, match=r"^p: must be p-values in \[0, 1\]"):
        adjust_p_values(p)


@FAST
@given(
    st.lists(
        st.tuples(
            st.one_of(FLOATS, st.just(float("nan"))),
            st.one_of(FLOATS, st.sampled_from([0.0, -1.0, float("nan"), float("inf")])),
        ),
        max_size=10,
    ),
    st.one_of(st.sampled_from([1e-300, 1e-12, 1.0, 1e300]), st.floats(1e-6, 1e6)),
)
def test_msprt_p_values_are_always_valid_p_values(looks, tau2):
    d = np.array([x[0] for x in looks], dtype=float)
    v = np.array([x[1] for x in looks], dtype=float)
    p = msprt_p_values(d, v, tau2=tau2)
    assert p.shape == d.shape
    assert ((p >= 0) & (p <= 1)).all()  # never NaN: a look without data keeps the last p
    assert (np.diff(p) <= 0).all()


@FAST
@given(st.sampled_from([0.0, -1.0, float("nan"), float("inf"), "1", None]))
def test_msprt_rejects_bad_tau2_with_user_error(tau2):
    with pytest.raises(UserError, match=r"^tau2: must be a number > 0"):
        msprt_p_values([0.1], [1.0], tau2=tau2)

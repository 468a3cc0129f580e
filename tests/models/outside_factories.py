"""Factory models for tests/models/test_outside.py (``tests.models.outside_factories:NAME``):
one that follows the protocol, with vectors simple enough to compute by hand, and one for
each way of breaking it."""

from __future__ import annotations

import numpy as np

NOT_CALLABLE = 3


class Hand:
    """D = 4. User: [1, bucket mod 10 / 10, first profile code / 10, scenario / 10];
    item in scenario s: [category / 10, item mod 7 / 7, content type, s / 10]. Reads no
    history, so an embeddings export of it is exact."""

    def __init__(self, context):
        self.items = context.items

    def user_vectors(self, f):
        n = f["scenario"].shape[0]
        prof = f["profile"][:, 0] if f["profile"].shape[1] else np.zeros(n)
        return np.column_stack(
            [np.ones(n), f["user_bucket"] % 10 / 10, prof / 10, f["scenario"] / 10]
        )

    def pool_vectors(self, scenario, pool):
        it = self.items
        return np.column_stack(
            [
                it.category[pool] / 10,
                pool % 7 / 7,
                it.content_type[pool],
                np.full(pool.size, scenario / 10),
            ]
        )


def make_good(context):
    return Hand(context)


def make_raises(context):
    raise ValueError("boom")


class UserOnly:
    def user_vectors(self, f):
        return np.ones((f["scenario"].shape[0], 2))


def make_no_pool(context):
    return UserOnly()


class Broken(Hand):
    """`Hand` with one thing wrong, chosen by `fault`."""

    def __init__(self, context, fault):
        super().__init__(context)
        self.fault, self.calls = fault, 0

    def user_vectors(self, f):
        out = super().user_vectors(f)
        n = out.shape[0]
        self.calls += 1
        if self.fault == "short":
            return out[:-1, :3]
        if self.fault == "raises":
            raise KeyError("hist_items")
        if self.fault == "strings":
            return np.full((n, 4), "a")
        if self.fault == "changes":
            return out + self.calls
        if self.fault == "big_batches" and n > 100:
            return np.vstack([out, out[:1]])
        if self.fault == "writes":
            f["hist_items"][:] = -1
        return out

    def pool_vectors(self, scenario, pool):
        out = super().pool_vectors(scenario, pool)
        if self.fault == "nan":
            out[2, 1] = np.nan
        if self.fault == "dims" or (self.fault == "dims_by_scenario" and scenario == 2):
            return out[:, :3]
        if self.fault == "huge":
            out[0, 0] = 1e300
        return out


def _broken(fault):
    def make(context):
        return Broken(context, fault)

    return make


make_short = _broken("short")
make_user_raises = _broken("raises")
make_strings = _broken("strings")
make_changes = _broken("changes")
make_big_batches = _broken("big_batches")
make_writes = _broken("writes")
make_nan = _broken("nan")
make_dims = _broken("dims")
make_dims_by_scenario = _broken("dims_by_scenario")
make_huge = _broken("huge")

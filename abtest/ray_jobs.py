"""Ray, the optional extra, for the commands that take ``--workers N``: the import with its
one-line install hint, and a session that starts a local Ray with N CPUs (or joins the
cluster named by ``RAY_ADDRESS``, e.g. ``ray://head:10001``) and shuts down only what it
started."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType

from core.errors import UserError


def ray_module() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise UserError(
            "--workers needs Ray, an optional extra: pip install -c constraints.txt -e '.[ray]' "
            "(or run without --workers)"
        ) from None
    return ray


@contextlib.contextmanager
def ray_session(
    workers: int, address: str | None = None, log_to_driver: bool = False
) -> Iterator[ModuleType]:
    """Ray, initialised for the block: joined at `address` (default ``RAY_ADDRESS``) or
    started locally with `workers` CPUs; shut down after only if started here."""
    ray = ray_module()
    address = address or os.environ.get("RAY_ADDRESS")
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = {"include_dashboard": False, "log_to_driver": log_to_driver}
        ray.init(address=address, **kwargs) if address else ray.init(num_cpus=workers, **kwargs)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()

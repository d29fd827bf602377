"""Connecting to Ray the same way from the CLI, from `ray job submit` and from tests."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` / $RAY_ADDRESS if given, else start an embedded local instance.

    A job submitted with ``ray job submit`` has RAY_ADDRESS set and joins its
    cluster; ``raypf <stage>`` on a laptop starts Ray itself and stops it on exit.
    ``address="auto"`` joins a cluster running on this machine if there is one
    and falls back to a local instance otherwise (what ``jobs/`` use).
    """
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address == "auto":
        try:
            ray.init(address="auto", log_to_driver=True)
            log.info("joined the running Ray cluster")
            return
        except ConnectionError:
            log.info("no running Ray cluster found")
    elif address:
        log.info("connecting to Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=True)
        return
    log.info("starting a local Ray instance (%s CPUs)", num_cpus or "all")
    # the dashboard serves the state API, through which Ray Train's placement-group cleaner sees that a
    # stopped run's controller is gone; without it a stopped (e.g. paused) trial's workers' CPUs leak
    ray.init(num_cpus=num_cpus, include_dashboard=True, log_to_driver=True, configure_logging=False)

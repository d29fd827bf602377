"""How many trials train at once: a counting semaphore that trials hold while their workers run.

Ray Tune bounds concurrency through its searcher, which then creates only that
many trials, so Hyperband's brackets never fill and it never pauses anything;
and resource requests cannot bound it, since each trial's TorchTrainer places
its own workers. So every trial exists from the start with a token resource
request, and takes a slot here before it builds its TorchTrainer. A trial that
the scheduler pauses or stops is killed without releasing its slot; slots of
trials whose process has died are taken back at the next request.
"""

from __future__ import annotations

import logging
import time

import ray

log = logging.getLogger(__name__)
NAMESPACE = "raypf"


@ray.remote(num_cpus=0)
class Slots:
    def __init__(self, n: int) -> None:
        self.n = n
        self.holders: dict[str, ray.actor.ActorHandle] = {}

    def acquire(self, trial_id: str, holder: ray.actor.ActorHandle) -> bool:
        if trial_id in self.holders:
            return True
        if len(self.holders) >= self.n:
            self._drop_dead()
        if len(self.holders) >= self.n:
            return False
        self.holders[trial_id] = holder
        return True

    def release(self, trial_id: str) -> None:
        self.holders.pop(trial_id, None)

    def held(self) -> list[str]:
        return sorted(self.holders)

    def _drop_dead(self) -> None:
        for trial_id, holder in list(self.holders.items()):
            try:
                ray.get(holder.__ray_ready__.remote(), timeout=0.5)
            except ray.exceptions.GetTimeoutError:
                pass  # alive: busy in a training step
            except ray.exceptions.RayActorError:
                del self.holders[trial_id]


def slots_name(sweep: str) -> str:
    return f"raypf-tune-slots-{sweep}"


def create(sweep: str, n: int) -> ray.actor.ActorHandle:
    """The sweep's semaphore (a new one: a resumed sweep starts with every slot free)."""
    try:
        ray.kill(ray.get_actor(slots_name(sweep), namespace=NAMESPACE))
    except ValueError:
        pass
    slots = Slots.options(name=slots_name(sweep), namespace=NAMESPACE).remote(n)
    ray.get(slots.held.remote())  # registered before any trial looks it up
    return slots


def acquire(sweep: str, trial_id: str, poll_s: float = 1.0) -> None:
    """Block until this trial holds a slot."""
    slots = ray.get_actor(slots_name(sweep), namespace=NAMESPACE)
    me = ray.get_runtime_context().current_actor
    waited = 0.0
    while not ray.get(slots.acquire.remote(trial_id, me)):
        if waited == 0.0:
            log.info("trial %s waits for a free slot", trial_id)
        time.sleep(poll_s)
        waited += poll_s


def release(sweep: str, trial_id: str) -> None:
    try:
        ray.get(ray.get_actor(slots_name(sweep), namespace=NAMESPACE).release.remote(trial_id))
    except ValueError:
        pass  # the sweep's driver is gone

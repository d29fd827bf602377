"""The per-step training loop: optimizer, schedule, one epoch of steps, evaluation, checkpoint state.

Imports only torch, numpy and pyarrow (the numeric core): the Ray worker and
the plain single-process path (``plain.py``, the GPU benchmark) run the same
functions. Metrics of several workers are summed through torch.distributed
when it is initialised, so every worker sees the same numbers and takes the
same early-stopping decision.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from raypf.data.batching import PackedBatch
from raypf.models.losses import LossOptions, compute_loss
from raypf.models.metrics import CellMetrics


@dataclass(frozen=True)
class OptimOptions:
    """AdamW with linear warm-up then cosine (or constant) decay, stepped per batch."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_epochs: float = 1.0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0  # max gradient norm; 0 switches clipping off


def lr_factor(step: int, steps_per_epoch: int, epochs: int, o: OptimOptions) -> float:
    """Multiplier of the base learning rate at optimizer step ``step``."""
    warmup = o.warmup_epochs * steps_per_epoch
    if step < warmup:
        return (step + 1) / warmup
    if o.schedule == "constant":
        return 1.0
    total = max(epochs * steps_per_epoch - warmup, 1)
    progress = min((step - warmup) / total, 1.0)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, o: OptimOptions, steps_per_epoch: int, epochs: int):
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("every parameter is frozen: nothing to train")
    opt = torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps_per_epoch, epochs, o))
    return opt, sched


def freeze(model: nn.Module, prefixes: list[str]) -> int:
    """Freeze parameters whose names start with any prefix (transfer learning); returns how many tensors."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in names):
            tops = sorted({n.split(".")[0] for n in names})
            raise ValueError(f"finetune.freeze: no parameter starts with '{prefix}' (top-level parts: {', '.join(tops)})")
    n = 0
    for name, p in model.named_parameters():
        if any(name.startswith(prefix) for prefix in prefixes):
            p.requires_grad_(False)
            n += 1
    return n


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device_type=device.type, dtype=dtype) if dtype is not None else nullcontext()


def train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched,
    loss_options: LossOptions,
    batches: Iterator[PackedBatch],
    steps: int,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    grad_clip: float = 0.0,
) -> dict:
    """``steps`` optimizer steps; returns mean loss, samples and real points seen, and the time waiting for data."""
    model.train()
    loss_sum = torch.zeros((), device=device)
    samples = points = 0
    wait = 0.0
    t_start = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = next(batches).to(device, non_blocking=True)
        wait += time.perf_counter() - t0
        with autocast(device, amp_dtype):
            out = model(batch)
            loss = compute_loss(loss_options, out, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        sched.step()
        loss_sum += loss.detach()
        samples += batch.n_samples
        points += batch.n_points
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t_start
    return {
        "loss": float(loss_sum) / max(steps, 1),
        "samples": samples,
        "points": points,
        "data_wait_s": wait,
        "step_s": wall,
        "lr": sched.get_last_lr()[0],
    }


def evaluate(model: nn.Module, batches, target: str, device: torch.device, amp_dtype: torch.dtype | None = None) -> CellMetrics:
    model.eval()
    metrics = CellMetrics(target)
    with torch.no_grad():
        for batch in batches:
            batch = batch.to(device, non_blocking=True)
            with autocast(device, amp_dtype):
                out = model(batch)
            metrics.update(out, batch)
    return metrics


def merged_result(metrics: CellMetrics) -> dict:
    """``metrics.result()`` over all workers when torch.distributed runs, else this worker's."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return metrics.result()
    sums = torch.tensor(np.concatenate([metrics.counts.ravel(), metrics.weighted.ravel(), [metrics.sq_err, metrics.abs_err]]))
    dist.all_reduce(sums)
    total = CellMetrics(metrics.target)
    k2 = total.k * total.k
    total.counts, total.weighted = sums[:k2].numpy().reshape(total.k, -1), sums[k2 : 2 * k2].numpy().reshape(total.k, -1)
    total.sq_err, total.abs_err = float(sums[-2]), float(sums[-1])
    parts: list = [None] * dist.get_world_size()
    dist.all_gather_object(parts, (metrics.pred_energy, metrics.true_energy))
    for pred, true in parts:
        total.pred_energy += pred
        total.true_energy += true
    return total.result()


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


def state_dict(model, opt, sched, epoch: int, best: dict, history: list) -> dict:
    """Everything a resumed run needs: weights, optimizer, schedule, epoch, best so far, RNG states."""
    return {
        "model": unwrap(model).state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": epoch,
        "best": best,
        "history": history,
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
    }


def load_state(state: dict, model, opt=None, sched=None) -> None:
    unwrap(model).load_state_dict(state["model"])
    if opt is not None:
        opt.load_state_dict(state["optimizer"])
    if sched is not None:
        sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    np.random.set_state(state["numpy_rng"])


class EarlyStopping:
    """Stop when ``metric`` has not improved for ``patience`` epochs (``None``: never)."""

    def __init__(self, metric: str, mode: str, patience: int | None, best: dict | None = None) -> None:
        self.metric, self.mode, self.patience = metric, mode, patience
        self.best = dict(best or {})

    def update(self, epoch: int, metrics: dict) -> bool:
        """Record ``metrics`` of ``epoch``; True if this epoch is the best so far."""
        if self.metric not in metrics:
            raise KeyError(f"early_stopping.metric '{self.metric}' is not among the metrics: {', '.join(sorted(metrics))}")
        value = float(metrics[self.metric])
        better = not self.best or (value > self.best["value"] if self.mode == "max" else value < self.best["value"])
        if better:
            self.best = {"metric": self.metric, "value": value, "epoch": epoch}
        return better

    def should_stop(self, epoch: int) -> bool:
        return self.patience is not None and bool(self.best) and epoch - self.best["epoch"] >= self.patience

"""The driver of `raypf train`: checks, MLflow run, Ray Datasets, TorchTrainer, artifacts.

Re-running with the same ``run_name`` resumes: the newest checkpoint under
``<output_dir>/ray/<run_name>`` gives the epoch to continue from, the data plan
starts there, and metrics go on into the same MLflow run. Within a run, Ray
Train restarts a failed worker group from its last reported checkpoint
(``max_failures``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from raypf.config import ConfigError
from raypf.train.checkpoints import METRICS, latest_checkpoint
from raypf.train.config import TrainConfig

log = logging.getLogger(__name__)
RUN_TAG = "raypf.run_name"


def check_dataset(cfg: TrainConfig, source: str) -> tuple[str, dict]:
    """The samples dataset directory and its train row groups by set, after checking metadata, columns and sets."""
    import pyarrow.dataset as pads

    from raypf.data.parquet_batches import read_metadata
    from raypf.train.epochs import row_groups
    from raypf.train.ray_data import read_columns

    path = Path(cfg.data.dataset).expanduser().resolve()
    if not path.is_dir():
        raise ConfigError(f"{source}: key 'data.dataset': {path} is not a directory (run raypf preprocess first)")
    try:
        read_metadata(path)
    except FileNotFoundError as err:
        raise ConfigError(f"{source}: key 'data.dataset': {err}") from None
    schema = pads.dataset(str(path), format="parquet", partitioning="hive", exclude_invalid_files=True).schema
    missing = [c for c in read_columns(cfg) if c not in schema.names]
    if missing:
        raise ConfigError(f"{source}: key 'data.dataset': {path} lacks column(s) {missing}; not a raypf samples dataset of this version")
    train_groups = row_groups(str(path), "train")
    sets = set(train_groups)
    asked = {"data.mix": set(cfg.data.mix or {}), "finetune.replay.source": set(cfg.finetune.replay.source if cfg.finetune.replay else {})}
    for key, names in asked.items():
        if names - sets:
            raise ConfigError(f"{source}: key '{key}': set(s) {sorted(names - sets)} not in the train split of {path} (sets: {sorted(sets)})")
    return str(path), train_groups


def check_resources(cfg: TrainConfig, source: str) -> None:
    """Fail at start, not after a scheduling timeout, when the cluster cannot hold the workers."""
    import ray

    res = ray.cluster_resources()
    s = cfg.scaling
    if s.use_gpu and res.get("GPU", 0) < s.num_workers * s.gpus_per_worker:
        raise ConfigError(
            f"{source}: key 'scaling.use_gpu': {s.num_workers} worker(s) x {s.gpus_per_worker} GPU asked, "
            f"the Ray cluster has {res.get('GPU', 0):g} GPU(s)"
        )
    need = s.num_workers * s.cpus_per_worker + cfg.data.read_cpus
    if res.get("CPU", 0) < need:
        raise ConfigError(
            f"{source}: key 'scaling.cpus_per_worker': {s.num_workers} worker(s) x {s.cpus_per_worker:g} CPU plus "
            f"{cfg.data.read_cpus:g} for reading data need {need:g} CPUs, the Ray cluster has {res.get('CPU', 0):g}"
        )


def mlflow_run(cfg: TrainConfig, tags: dict[str, str] | None = None) -> str:
    """The MLflow run of ``run_name`` in the experiment: the existing one (resume) or a new one with the config.

    ``tags`` go on a new run only (a sweep's trials carry their parent run's id there).
    """
    from raypf.tracking import find_run, flatten, get_experiment, log_params

    client, exp_id = get_experiment(cfg.tracking_uri(), cfg.tracking.experiment, cfg.output_dir)
    found = find_run(client, exp_id, RUN_TAG, cfg.run_name)
    if found is not None:
        client.update_run(found.info.run_id, status="RUNNING")
        return found.info.run_id
    run = client.create_run(exp_id, run_name=cfg.run_name, tags={RUN_TAG: cfg.run_name, "raypf.stage": "train", **(tags or {})})
    log_params(client, run.info.run_id, flatten(cfg.model_dump(mode="json")))
    client.log_dict(run.info.run_id, cfg.model_dump(mode="json"), "config.yaml")
    return run.info.run_id


def data_config(cfg: TrainConfig):
    """Ray Train's ingest options, with each dataset's readers capped when ``data.read_tasks`` is set.

    Concurrent trials each see the whole cluster; without a cap, one trial's
    readers can take the CPUs that another trial's workers wait for.
    """
    import ray.train
    from ray.data import ExecutionResources

    if cfg.data.read_tasks is None:
        return None
    options = ray.train.DataConfig.default_ingest_options()
    options.resource_limits = ExecutionResources(cpu=cfg.data.read_tasks * cfg.data.read_cpus)
    return ray.train.DataConfig(execution_options=options)


def run_train(
    cfg: TrainConfig,
    source: str = "config",
    address: str | None = None,
    callbacks: list | None = None,
    mlflow_tags: dict[str, str] | None = None,
) -> dict:
    """Train ``cfg``; returns the final metrics, the MLflow run id and the checkpoint paths.

    ``callbacks`` are Ray Train callbacks (a sweep's trial passes Tune's report callback).
    """
    import mlflow
    import ray.train
    from ray.train.torch import TorchTrainer

    from raypf.ray_utils import init_ray
    from raypf.train.ray_data import build_datasets
    from raypf.train.worker import train_loop

    dataset_dir, train_groups = check_dataset(cfg, source)
    # workers run elsewhere (another directory, another node): give them absolute paths only
    cfg = cfg.model_copy(
        update={
            "output_dir": str(Path(cfg.output_dir).expanduser().resolve()),
            "data": cfg.data.model_copy(update={"dataset": dataset_dir}),
            "tracking": cfg.tracking.model_copy(update={"tracking_uri": cfg.tracking_uri()}),
        }
    )
    init_ray(address)
    check_resources(cfg, source)
    run_dir = cfg.run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    storage = run_dir.parent / "ray"
    resume_from, last_epoch = latest_checkpoint(storage / cfg.run_name)
    start = last_epoch + 1
    run_id = mlflow_run(cfg, mlflow_tags)
    log.info("run %s (MLflow %s): epochs %d-%d on %d worker(s)%s", cfg.run_name, run_id, start, cfg.epochs - 1,
             cfg.scaling.num_workers, f", resuming from {resume_from}" if resume_from else "")  # fmt: skip
    t0 = time.perf_counter()
    result = None
    if start < cfg.epochs:
        s = cfg.scaling
        resources = {"CPU": s.cpus_per_worker, **({"GPU": s.gpus_per_worker} if s.use_gpu else {})}
        trainer = TorchTrainer(
            train_loop,
            train_loop_config={
                "cfg": cfg.model_dump(mode="json"), "dataset_dir": dataset_dir, "mlflow_run_id": run_id,
                "checkpoints": str(storage / cfg.run_name),
            },
            scaling_config=ray.train.ScalingConfig(num_workers=s.num_workers, use_gpu=s.use_gpu, resources_per_worker=resources),
            run_config=ray.train.RunConfig(
                name=cfg.run_name, storage_path=str(storage),
                failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2), callbacks=callbacks,
            ),
            datasets=build_datasets(cfg, dataset_dir, train_groups, start),
            dataset_config=data_config(cfg),
        )  # fmt: skip
        result = trainer.fit()
    final, _ = latest_checkpoint(storage / cfg.run_name)
    client = mlflow.MlflowClient(cfg.tracking_uri())
    if final is not None:
        client.log_artifacts(run_id, str(final), "checkpoints/final")
    if (run_dir / "best").exists():
        client.log_artifacts(run_id, str(run_dir / "best"), "checkpoints/best")
    client.set_terminated(run_id, "FINISHED")
    metrics = dict(result.metrics) if result is not None and result.metrics else {}
    if not metrics and final is not None:
        metrics = json.loads((final / METRICS).read_text())
    summary = {"run_id": run_id, "metrics": metrics, "final_checkpoint": str(final) if final else None,
               "best_checkpoint": str(run_dir / "best") if (run_dir / "best").exists() else None,
               "wall_seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    if metrics:
        log.info("epoch %s: loss %.4f, val F1 %.3f, val energy-weighted accuracy %.3f, %.0f samples/s; best %s",
                 metrics.get("epoch"), metrics.get("loss", float("nan")), metrics.get("val_f1", float("nan")),
                 metrics.get("val_energy_weighted_accuracy", float("nan")), metrics.get("samples_per_s", 0.0),
                 run_dir / "best")  # fmt: skip
    return summary

"""From a sweep config to trial configs: the base training config, the Tune search space, and the checks.

Every trial's training config is the base config (with the sweep's fixed
``set`` overrides, resources and epochs = ``scheduler.max_t``) plus its sampled
values at dotted keys. Everything that can be known before a trial starts is
checked here, so a typo in the space fails in the first second and names the key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from raypf.config import ConfigError, set_dotted, validate_config
from raypf.tracking import flatten
from raypf.train.config import TrainConfig
from raypf.tune.config import TuneConfig


def sweep_dir(cfg: TuneConfig) -> Path:
    return Path(cfg.output_dir).expanduser().resolve() / cfg.name


def base_config(cfg: TuneConfig, source: str) -> dict:
    """The base training config as a full mapping (defaults filled in), with what the sweep fixes for every trial."""
    path = Path(cfg.base).expanduser()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as err:
        raise ConfigError(f"{source}: key 'base': cannot read {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: key 'base': {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: key 'base': {path} is not a mapping")
    data["epochs"] = cfg.scheduler.max_t
    data["output_dir"] = str(sweep_dir(cfg))
    data["tracking"] = {"tracking_uri": cfg.tracking_uri(), "experiment": cfg.tracking.experiment}
    if cfg.resources is not None:
        data["scaling"] = cfg.resources.model_dump()
    where = f"{source}: base {path}"
    full = validate_config(TrainConfig, data, where).model_dump(mode="json")
    for key, value in flatten(cfg.set).items():  # dotted keys or nested mappings (`--set set.data.dataset=...`)
        _check_key(full, key, source, "set")
        set_dotted(full, key, value, f"{source}: key 'set'")
    full["data"]["read_tasks"] = full["data"]["read_tasks"] or 1  # see raypf.train.run.data_config
    dataset = Path(full["data"]["dataset"]).expanduser().resolve()
    full["data"]["dataset"] = str(dataset)
    return validate_config(TrainConfig, full, where).model_dump(mode="json")


def trial_config(base: dict, sampled: dict[str, Any], run_name: str) -> TrainConfig:
    """The training config of one trial: ``base`` with the ``sampled`` values at their dotted keys."""
    data = copy.deepcopy(base)
    for key, value in sampled.items():
        set_dotted(data, key, plain(value), "search_space")
    data["run_name"] = run_name
    return TrainConfig.model_validate(data)


def param_space(cfg: TuneConfig) -> dict:
    """The search space as Ray Tune domains, keyed by the dotted training-config keys."""
    from ray import tune

    out = {}
    for key, dist in cfg.search_space.items():
        out[key] = tune.choice(dist.args) if dist.kind == "choice" else getattr(tune, dist.kind)(*dist.args)
    return out


def check_sweep(cfg: TuneConfig, base: dict, source: str) -> None:
    """Fail before any trial when a key is not in the training config, a value does not validate, or the metric is never reported."""
    from raypf.models.registry import check_options
    from raypf.train.worker import reported_metrics

    for key, dist in cfg.search_space.items():
        where = f"search_space.{key}"
        _check_key(base, key, source, "search_space")
        for value in dist.extremes():
            data = copy.deepcopy(base)
            set_dotted(data, key, value, source)
            try:
                trial = TrainConfig.model_validate(data)
                check_options(trial.model.name, trial.model.options)
            except ValidationError as err:
                first = err.errors()[0]
                raise ConfigError(
                    f"{source}: key '{where}': value {value!r} gives an invalid training config: {first['msg']}"
                ) from None
            except ValueError as err:
                raise ConfigError(f"{source}: key '{where}': value {value!r}: {err}") from None
    names = reported_metrics(TrainConfig.model_validate(base))
    if cfg.metric not in names:
        raise ConfigError(
            f"{source}: key 'metric': training never reports '{cfg.metric}'; it reports {', '.join(sorted(names))}"
        )


def _check_key(base: dict, key: str, source: str, section: str) -> None:
    """``key`` must name a key of the training config (model options: one of the model's options)."""
    from raypf.models.registry import option_names

    node: Any = base
    parts = key.split(".")
    for i, part in enumerate(parts):
        if parts[:2] == ["model", "options"] and i == 2 and len(parts) == 3:
            known = option_names(base.get("model", {}).get("name", "pointnet"))
            if part in known:
                return
            raise ConfigError(
                f"{source}: key '{section}.{key}': model '{base['model']['name']}' has no option '{part}' (options: {', '.join(known)})"
            )
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(
                f"{source}: key '{section}.{key}': the training config has no key '{'.'.join(parts[: i + 1])}'"
            )
        node = node[part]


def plain(value: Any) -> Any:
    """numpy scalars from Tune's samplers -> Python numbers, so that pydantic and YAML take them."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict)) else value

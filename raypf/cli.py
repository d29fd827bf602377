"""The `raypf` command: one sub-command per pipeline stage."""

from __future__ import annotations

import argparse
import logging
import sys

from raypf.config import ConfigError, load_config
from raypf.data.mltree import MLTreeError

# stage -> (help, config class, runner): each loads its YAML (with --set overrides) and runs on Ray
STAGES = {
    "simulate": ("write MLTree ROOT files from Pythia8 and the fast calorimeter",
                 "raypf.simulate.config:SimulateConfig", "raypf.simulate.run:run_simulation"),
    "preprocess": ("turn MLTree files into per-track point-cloud samples (Parquet)",
                   "raypf.data.preprocess_config:PreprocessConfig", "raypf.data.preprocess:run_preprocess"),
    "train": ("train a point-cloud segmentation model with Ray Train, tracked in MLflow",
              "raypf.train.config:TrainConfig", "raypf.train.run:run_train"),
    "tune": ("a Hyperband (or ASHA) sweep of raypf train with Ray Tune, every trial in MLflow",
             "raypf.tune.config:TuneConfig", "raypf.tune.run:run_tune"),
    "evaluate": ("score a checkpoint against every baseline and the rule-based particle flow: table, plots, report",
                 "raypf.evaluate.config:EvaluateConfig", "raypf.evaluate.run:run_evaluate"),
}  # fmt: skip
#: evaluate's shorthands for config keys
SHORTHANDS = ("checkpoint", "data", "split")


def _load(ref: str):
    import importlib

    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def _stage(args: argparse.Namespace) -> None:
    _, config_cls, runner = STAGES[args.command]
    overrides = _overrides(args.set)
    overrides.update({key: getattr(args, key) for key in SHORTHANDS if getattr(args, key, None) is not None})
    cfg = load_config(_load(config_cls), args.config, overrides)
    result = _load(runner)(cfg, source=args.config, address=args.address)
    if args.command == "evaluate":
        print(result["table_markdown"])  # the table is the command's output, not a log line


def _store(args: argparse.Namespace) -> str:
    from raypf.tracking import store_uri

    return args.tracking_uri or store_uri(args.output)


def _runs(args: argparse.Namespace) -> None:
    from raypf.runs import format_table, runs_table

    experiment = args.experiment or ("raypf-tune" if args.sweep else "raypf-train")
    try:
        rows = runs_table(_store(args), experiment, args.sweep, args.metric, args.mode, args.limit)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    print(format_table(rows))  # the table is the command's output, not a log line


def _ui(args: argparse.Namespace) -> None:
    import os

    uri = _store(args)
    logging.getLogger("raypf").info("MLflow UI on %s: http://%s:%d", uri, args.host, args.port)
    os.execvp(
        sys.executable,
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            uri,
            "--host",
            args.host,
            "--port",
            str(args.port),
        ],
    )


def _overrides(pairs: list[str] | None) -> dict:
    import yaml

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set {pair!r}: expected key=value")
        out[key] = yaml.safe_load(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raypf", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (text, _, _) in STAGES.items():
        stage = sub.add_parser(name, help=text)
        stage.add_argument("--config", default=f"configs/{name}.yaml")
        stage.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (dotted)")
        stage.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS or a local instance)")
        if name == "evaluate":
            stage.add_argument("--checkpoint", help="checkpoint dir or state.pt, training run dir or sweep dir")
            stage.add_argument("--data", help="samples dataset (default: the checkpoint's)")
            stage.add_argument("--split", choices=["train", "val", "test"])
        stage.set_defaults(func=_stage)
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--output", default="output", help="the output root whose mlflow.db is the project store")
    store.add_argument("--tracking-uri", default=None, help="an MLflow store instead (default: $MLFLOW_TRACKING_URI)")
    ru = sub.add_parser("runs", parents=[store], help="compare the runs of an experiment or of one sweep, best first")
    ru.add_argument("--sweep", default=None, help="only this sweep's trials")
    ru.add_argument("--experiment", default=None, help="default: raypf-tune with --sweep, else raypf-train")
    ru.add_argument("--metric", default="val_f1")
    ru.add_argument("--mode", choices=["max", "min"], default="max")
    ru.add_argument("--limit", type=int, default=100)
    ru.set_defaults(func=_runs)
    ui = sub.add_parser("ui", parents=[store], help="the MLflow UI on the project store")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        args.func(args)
    except ConfigError as err:
        logging.getLogger("raypf").error("%s", err)
        return 2
    except MLTreeError as err:
        logging.getLogger("raypf").error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

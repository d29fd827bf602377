"""The `raypf` command: one sub-command per pipeline stage."""

from __future__ import annotations

import argparse
import logging
import sys

from raypf.config import ConfigError, load_config
from raypf.data.mltree import MLTreeError


def _simulate(args: argparse.Namespace) -> None:
    from raypf.simulate.config import SimulateConfig
    from raypf.simulate.run import run_simulation

    cfg = load_config(SimulateConfig, args.config, _overrides(args.set))
    run_simulation(cfg, source=args.config, address=args.address)


def _preprocess(args: argparse.Namespace) -> None:
    from raypf.data.preprocess import run_preprocess
    from raypf.data.preprocess_config import PreprocessConfig

    cfg = load_config(PreprocessConfig, args.config, _overrides(args.set))
    run_preprocess(cfg, source=args.config, address=args.address)


def _train(args: argparse.Namespace) -> None:
    from raypf.train.config import TrainConfig
    from raypf.train.run import run_train

    cfg = load_config(TrainConfig, args.config, _overrides(args.set))
    run_train(cfg, source=args.config, address=args.address)


def _tune(args: argparse.Namespace) -> None:
    from raypf.tune.config import TuneConfig
    from raypf.tune.run import run_tune

    cfg = load_config(TuneConfig, args.config, _overrides(args.set))
    run_tune(cfg, source=args.config, address=args.address)


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
    sim = sub.add_parser("simulate", help="write MLTree ROOT files from Pythia8 and the fast calorimeter")
    sim.add_argument("--config", default="configs/simulate.yaml")
    sim.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (dotted)")
    sim.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS or a local instance)")
    sim.set_defaults(func=_simulate)
    pre = sub.add_parser("preprocess", help="turn MLTree files into per-track point-cloud samples (Parquet)")
    pre.add_argument("--config", default="configs/preprocess.yaml")
    pre.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (dotted)")
    pre.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS or a local instance)")
    pre.set_defaults(func=_preprocess)
    tr = sub.add_parser("train", help="train a point-cloud segmentation model with Ray Train, tracked in MLflow")
    tr.add_argument("--config", default="configs/train.yaml")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (dotted)")
    tr.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS or a local instance)")
    tr.set_defaults(func=_train)
    tu = sub.add_parser("tune", help="a Hyperband (or ASHA) sweep of raypf train with Ray Tune, every trial in MLflow")
    tu.add_argument("--config", default="configs/tune.yaml")
    tu.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (dotted)")
    tu.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS or a local instance)")
    tu.set_defaults(func=_tune)
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

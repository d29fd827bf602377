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

"""Command-line helpers shared by the entry points."""

import argparse
import logging

import yaml

LOG_FORMAT = "%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s"


def start_logging():
    """INFO logging with time and source line, as ESPnet's tools log."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)


def parse_args_with_config(parser: argparse.ArgumentParser, cmd=None, strict: bool = True) -> argparse.Namespace:
    """Options of the command line override those of its ``--config`` YAML file, which override
    the parser's defaults. ``strict``: a key of the file that is no option is an error (else it
    is ignored, for files shared between tools, such as decoding configs)."""
    args = parser.parse_args(cmd)
    if args.config is None:
        return args
    with open(args.config, encoding="utf-8") as f:
        options = yaml.safe_load(f) or {}
    unknown = sorted(set(options) - set(vars(args)))
    if unknown and strict:
        raise ValueError(f"{args.config}: unknown options {unknown}")
    parser.set_defaults(**{key: value for key, value in options.items() if key not in unknown})
    return parser.parse_args(cmd)

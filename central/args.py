"""The arguments of `pue-monitor central` and `pue-monitor central token ...`, apart from
central.service so that every other command (such as `report`) builds its parser without
importing the central's web app, ingest and InfluxDB client."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction, serving_args) -> None:
    central = sub.add_parser("central", help="the province's central service: accepts what "
                             "the data centers' monitors ship, serves every site")
    central.add_argument("-c", "--config", type=Path, required=True)
    serving_args(central, "web, ingest and /metrics port (default 8080)", 8080)
    tokens = central.add_subparsers(dest="central_command")
    token = tokens.add_parser("token", help="ingest tokens of the data centers")
    actions = token.add_subparsers(dest="token_action", required=True)
    create = actions.add_parser("create", help="make a token for a data center (printed once)")
    create.add_argument("data_center")
    create.add_argument("--label", default="edge", help="name of this token (default edge)")
    create.add_argument("--from-env", metavar="VAR", default=None,
                        help="take the token from this environment variable instead of making "
                        "one (provisioning: docker compose, Ansible); printed nowhere")
    revoke = actions.add_parser("revoke", help="revoke a data center's tokens")
    revoke.add_argument("data_center")
    revoke.add_argument("--label", default=None, help="only this token (default: all)")
    actions.add_parser("list", help="every token (never the token itself)")

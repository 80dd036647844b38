"""`pue-monitor user add|list|remove|passwd|token`: the web view's users and API tokens.

Passwords never go on the command line (where `ps` and shell histories would show them):
they are asked for twice on a terminal, or read as one line from standard input.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from pue_monitor.config.model import USER_ROLES, Config
from pue_monitor.store.base import UserRecord, UserStoreProtocol

DEFAULT_DATA_DIR = Path("pue-data")


def add_parser(sub: argparse._SubParsersAction) -> None:
    user = sub.add_parser("user", help="manage the web view's users and API tokens",
                          description="Passwords are asked for on a terminal, or read as one "
                          "line from standard input; never given as arguments.")
    user.add_argument("-c", "--config", type=Path, required=True,
                      help="the configuration (its organisations)")
    user.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                      help="the store (default ./pue-data)")
    cmds = user.add_subparsers(dest="user_command", required=True)
    add = cmds.add_parser("add", help="add a user (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=USER_ROLES)
    add.add_argument("--org", help="an operator's organisation (config organisations:)")
    cmds.add_parser("list", help="list the users")
    remove = cmds.add_parser("remove", help="remove a user and their API tokens")
    remove.add_argument("name")
    passwd = cmds.add_parser("passwd", help="set a user's password (logs their sessions out)")
    passwd.add_argument("name")
    token = cmds.add_parser("token", help="make an API token for a user (shown once)")
    token.add_argument("name")
    token.add_argument("--label", default="", help="what the token is for")
    token.add_argument("--revoke", action="store_true", help="revoke all the user's tokens")


def read_password(stdin: TextIO) -> str:
    """:raises ValueError: the two entries differ, or nothing was given."""
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise ValueError("the two passwords differ")
    else:
        first = stdin.readline().rstrip("\r\n")
    if not first:
        raise ValueError("no password given (type it, or pipe one line to standard input)")
    return first


def run(args: argparse.Namespace, config: Config, store: UserStoreProtocol,
        stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    from pue_monitor.web.accounts import check_user, hash_password, new_token

    stdin, out = stdin or sys.stdin, out or sys.stdout

    try:
        if args.user_command == "add":
            check_user(config, args.name, args.role, args.org)
            if store.user(args.name) is not None:
                raise ValueError(f"user {args.name!r} exists already")
            store.add_user(UserRecord(args.name, args.role, args.org,
                                      hash_password(read_password(stdin)), time.time()))
            print(f"added {args.name} ({args.role}{' of ' + args.org if args.org else ''})",
                  file=out)
        elif args.user_command == "list":
            for user in store.users():
                created = datetime.fromtimestamp(user.created_ts, timezone.utc)
                print(f"{user.name}\t{user.role}\t{user.organisation or '-'}\t"
                      f"{created.isoformat(timespec='seconds')}", file=out)
        elif args.user_command == "remove":
            if not store.remove_user(args.name):
                raise ValueError(f"no user {args.name!r}")
            print(f"removed {args.name}", file=out)
        elif args.user_command == "passwd":
            if store.user(args.name) is None:
                raise ValueError(f"no user {args.name!r}")
            store.set_password_hash(args.name, hash_password(read_password(stdin)))
            print(f"password of {args.name} changed", file=out)
        elif args.revoke:
            if store.user(args.name) is None:
                raise ValueError(f"no user {args.name!r}")
            print(f"revoked {store.revoke_tokens(args.name)} token(s) of {args.name}", file=out)
        else:
            token, digest = new_token()
            store.add_token(args.name, digest, args.label, time.time())
            # The token alone on standard output, so a script can capture it.
            print(token, file=out)
    except ValueError as exc:
        print(f"pue-monitor user {args.user_command}: {exc}", file=sys.stderr)
        return 2
    return 0

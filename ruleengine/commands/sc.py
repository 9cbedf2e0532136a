"""``ruleengine sc``: a client for the unix command socket, used like ``suricatasc``.

    ruleengine sc [-c COMMAND] [-v] [SOCKET]

With ``-c`` it sends one command, prints the answer as JSON and exits 0 on OK, 1 on NOK;
without it, it reads commands line by line (``quit`` ends). Arguments follow the command
name (``iface-stat eth0``, ``bypass-remove 1234``).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ruleengine.control.client import ClientError, CommandClient, parse_command
from ruleengine.control.server import DEFAULT_PATH


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sc", help="talk to a running engine's unix socket (like suricatasc)",
        description="Send commands to the unix command socket, like suricatasc.")
    parser.add_argument("socket", nargs="?", default=DEFAULT_PATH,
                        help=f"socket path (default {DEFAULT_PATH})")
    parser.add_argument("-c", "--command", dest="sc_command", metavar="COMMAND",
                        help="send one command and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="show what is sent")
    parser.set_defaults(func=sc_command)


def sc_command(args: argparse.Namespace) -> int:
    client = CommandClient(args.socket)
    try:
        client.connect()
        if args.sc_command:
            return _one(client, args.sc_command, args.verbose)
        return _interactive(client, args.verbose)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()


def _one(client: CommandClient, line: str, verbose: bool) -> int:
    try:
        name, arguments = parse_command(line)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if verbose:
        print(f"SND: {json.dumps({'command': name, 'arguments': arguments})}")
    answer = client.send(name, arguments)
    print(json.dumps(answer))
    return 0 if answer.get("return") == "OK" else 1


def _interactive(client: CommandClient, verbose: bool) -> int:
    print("Command list: " + ", ".join([*client.commands, "quit"]))
    for raw in sys.stdin:
        line = raw.strip()
        if not line:
            continue
        if line == "quit":
            break
        try:
            name, arguments = parse_command(line)
        except ValueError as exc:
            print(exc)
            continue
        answer = client.send(name, arguments)
        print("Success:" if answer.get("return") == "OK" else "Error:")
        print(json.dumps(answer.get("message"), sort_keys=True, indent=4))
    return 0

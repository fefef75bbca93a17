"""``sluis connector serve --config FILE``: run one participant's connector; and the management
verbs (``sluis connector assets|policies|offers|negotiations|agreements|transfers ...``)."""

from __future__ import annotations

import argparse
import logging

from sluis.cli import CommandError
from sluis.commands import _connector_admin

_log = logging.getLogger(__name__)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from connector.app import create_app
    from connector.config import ConfigError, load_config
    from connector.store import StoreError

    try:
        config = load_config(args.config)
        app = create_app(config)
    except (ConfigError, StoreError) as error:
        raise CommandError(f"{args.config}: {error}") from None
    host = args.host or config.server.host
    port = args.port or config.server.port
    _log.info("connector starting", extra={"participant": config.participant_id, "host": host, "port": port})
    # access lines are never printed at this level; not forming them saves work on every request
    uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="on", access_log=False)
    return 0


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = groups.add_parser("connector", help="run a Dataspace Protocol connector")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    serve = commands.add_parser("serve", help="serve DSP, management API and data plane of one participant")
    serve.add_argument("--config", required=True, help="the participant's connector.toml")
    serve.add_argument("--host", default=None, help="bind address (default: [server].host)")
    serve.add_argument("--port", type=int, default=None, help="port (default: [server].port)")
    serve.set_defaults(handler=_serve)
    _connector_admin.register(commands)

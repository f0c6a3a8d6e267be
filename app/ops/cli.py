"""Flask CLI commands: `flask --app app load-streams [FILE]`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from app.extensions import get_store
from app.ops import redis_checks
from config.middleware import LOCAL_REFS_CONTEXT
from config.source_auth import SECRET_PREFIX_CONTEXT
from config.streams import load_streams_file


@click.command("load-streams")
@click.argument("path", required=False)
@with_appcontext
def load_streams(path: str | None) -> None:
    """Create or replace the streams defined in PATH (default: $STREAMS_FILE)."""
    errors = redis_checks.check_all(current_app, "web")  # the Procfile's web runs this first
    if errors:
        raise click.ClickException("; ".join(errors))
    moved = get_store().definitions.adopt_legacy_names()
    if moved:
        click.echo(f"moved {moved} stream names into the paged index")
    path = path or current_app.config["STREAMS_FILE"]
    if not path:
        click.echo("no streams file given and STREAMS_FILE is unset; nothing to load")
        return
    definitions = get_store().definitions
    context = {SECRET_PREFIX_CONTEXT: current_app.config["SECRET_ENV_PREFIX"],
               LOCAL_REFS_CONTEXT: True}
    for name, definition in load_streams_file(path, context).items():
        created = definitions.put(name, definition)
        click.echo(f"{'created' if created else 'updated'} stream {name}")


def init_app(app: Flask) -> None:
    """Register the CLI commands."""
    app.cli.add_command(load_streams)

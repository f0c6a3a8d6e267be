"""The commands of `data-streams`, one per thing an operator does; each calls the HTTP API.

Every command takes ``--json`` (print the answer as JSON, for scripts) and exits with the
code of what happened (`dscli.client`); a failure prints the API's message, never a
traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dscli import apply as applying
from dscli import progress, render
from dscli.client import DEFAULT_URL, NOT_PUBLISHED, Client, CommandError
from dscli.render import Output


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="DS_URL", default=DEFAULT_URL, show_default=True,
              help="Base URL of the data-streams API (env DS_URL).")
@click.option("--token", envvar="DS_TOKEN", default="", show_default=False,
              help="Bearer token (env DS_TOKEN): API_TOKEN to change things, READ_TOKEN "
                   "is enough to read.")
@click.pass_context
def cli(ctx: click.Context, url: str, token: str) -> None:
    """Define, run and watch data-streams streams over the HTTP API."""
    ctx.obj = Client(url, token)


def command() -> Callable[[Callable[..., None]], click.Command]:
    """Make `fn(client, out, **params)` a subcommand with --json and API errors handled."""
    def decorate(fn: Callable[..., None]) -> click.Command:
        @functools.wraps(fn)
        def run(as_json: bool, **params: Any) -> None:
            out = Output(as_json)
            try:
                fn(click.get_current_context().find_object(Client), out, **params)
            except CommandError as exc:
                out.error(exc)
                raise click.exceptions.Exit(exc.exit_code) from None
        option = click.option("--json", "as_json", is_flag=True,
                              help="Print the answer as JSON (for scripts).")
        return cli.command()(option(run))
    return decorate


# The overview answers at most this many streams a page; `streams` follows every page.
MAX_OVERVIEW_PAGE = 1000
MAX_PAGES = 10_000


@command()
def streams(client: Client, out: Output) -> None:
    """List every stream: state, version, freshness, last batch."""
    body = client.get("/ui/overview", limit=MAX_OVERVIEW_PAGE)
    rows = list(body["streams"])
    for _ in range(MAX_PAGES):  # follow the pages; bounded, as every loop here
        if not body.get("next_cursor"):
            break
        body = client.get("/ui/overview", limit=MAX_OVERVIEW_PAGE, cursor=body["next_cursor"])
        rows.extend(body["streams"])
    body = {**body, "streams": rows, "next_cursor": None}
    out.table(body, render.streams_table(rows))


@command()
@click.argument("name")
def show(client: Client, out: Output, name: str) -> None:
    """Describe a stream: state, schedule, versions, batch in progress, definition."""
    body = client.get(f"/streams/{name}")
    out.table(body, render.description(body))


@command()
@click.argument("file", type=click.Path(dir_okay=False))
def apply(client: Client, out: Output, file: str) -> None:
    """Create or update the streams FILE defines (YAML or JSON), printing what changes."""
    results = [applying.apply_one(client, name, definition)
               for name, definition in applying.read_streams(file).items()]
    out.result({"streams": results},
               *[line for result in results for line in applying.lines(result)])


@command()
@click.argument("name")
@click.option("--interval", type=click.IntRange(min=1), help="Seconds between batches.")
@click.option("--wait", is_flag=True, help="Wait for the batch to end, with a progress bar.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Give up waiting after this "
              "many seconds (exit 7).")
def start(client: Client, out: Output, name: str, interval: int | None, wait: bool,
          timeout: float | None) -> None:
    """Start fetching a stream every interval (the first batch starts at once)."""
    after = progress.last_final_version(client, name) if wait else 0
    body = {"interval_seconds": interval} if interval else {}
    started = client.call("POST", f"/streams/{name}/start", json=body)
    line = (f"{name}: running every {render.duration(started.get('interval_seconds'))}"
            f"{' (was running)' if started.get('already_running') else ''}")
    if not wait:
        out.result(started, line)
        return
    if not out.as_json:
        out.out.print(line)
    batch = progress.wait_for_batch(client, name, after, timeout, show=not out.as_json)
    result = {"start": started, "batch": batch}
    if batch is None:
        raise CommandError(f"gave up waiting for a batch of {name} after {timeout} s",
                           NOT_PUBLISHED, result=result)
    if batch.get("status") != "complete":
        if not out.as_json:
            out.out.print(_ended(name, batch))
        raise CommandError(f"batch {batch['version']} of {name} ended {batch.get('status')}"
                           f": {render.batch_reason(batch)}", NOT_PUBLISHED, result=result)
    out.result(result, _ended(name, batch))


def _ended(name: str, batch: dict[str, Any]) -> str:
    records = batch.get("records", batch.get("records_received", 0))
    return (f"{name}: batch {batch['version']} {render.styled(batch.get('status'))}, "
            f"{records} records in {batch.get('pages_received', 0)} pages")


@command()
@click.argument("name")
@click.option("--cancel", is_flag=True, help="Also cancel the batch in flight.")
def stop(client: Client, out: Output, name: str, cancel: bool) -> None:
    """Stop fetching a stream; its data stays (a running batch finishes unless --cancel)."""
    body = client.call("POST", f"/streams/{name}/stop", json={"cancel": cancel})
    cancelled = body.get("cancelled_version")
    out.result(body, f"{name}: stopped{'' if body.get('was_running') else ' (was stopped)'}"
                     f"{f', batch {cancelled} cancelled' if cancelled else ''}")


@command()
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
def batches(client: Client, out: Output, name: str, limit: int) -> None:
    """List a stream's recent batches, newest first."""
    body = client.get(f"/streams/{name}/batches", limit=limit)
    out.table(body, render.batches_table(body["batches"]))


@command()
@click.argument("name")
@click.argument("version", type=int)
def publish(client: Client, out: Output, name: str, version: int) -> None:
    """Publish a quarantined batch by hand (it must still be newer than the current)."""
    _decide(client, out, name, version, "publish")


@command()
@click.argument("name")
@click.argument("version", type=int)
def discard(client: Client, out: Output, name: str, version: int) -> None:
    """Discard a quarantined batch; its records expire after the grace period."""
    _decide(client, out, name, version, "discard")


def _decide(client: Client, out: Output, name: str, version: int, verb: str) -> None:
    body = client.call("POST", f"/streams/{name}/batches/{version}/{verb}")
    out.result(body, f"{name}: batch {version} {render.styled(body['batch']['status'])}")


@command()
@click.argument("name")
@click.option("--since", type=click.IntRange(min=0), required=True,
              help="The version you hold (0: everything).")
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True,
              help="Keys per request.")
def changes(client: Client, out: Output, name: str, since: int, limit: int) -> None:
    """Print what changed since a version: added, updated, removed (all pages)."""
    page = client.get(f"/streams/{name}/changes", since=since, limit=limit)
    merged = {key: page[key] for key in ("stream", "from", "to", "added", "updated", "removed")}
    for _ in range(1_000_000):
        if not page.get("next_cursor"):
            break
        page = client.get(f"/streams/{name}/changes", cursor=page["next_cursor"], limit=limit)
        for key in ("added", "updated", "removed"):
            merged[key] += page[key]
    out.result(merged, *render.change_lines(merged))


@command()
@click.argument("name")
@click.option("--format", "kind", type=click.Choice(["ndjson", "csv"]), default="ndjson",
              show_default=True)
@click.option("--out", "path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="File to write (replaced only once the export is whole).")
@click.option("--version", type=click.IntRange(min=1), help="A retained older version.")
def export(client: Client, out: Output, name: str, kind: str, path: Path,
           version: int | None) -> None:
    """Write a whole version of a stream to a file, with a progress bar."""
    done = progress.export(client, name, kind, path, version, show=not out.as_json)
    out.result(done, f"{name}: wrote {done['records']} records of version {done['version']} "
                     f"to {path}")


@command()
@click.argument("name")
def delete(client: Client, out: Output, name: str) -> None:
    """Stop a stream and forget its definition (its data expires with its versions)."""
    client.call("DELETE", f"/streams/{name}")
    out.result({"stream": name, "deleted": True}, f"{name}: deleted")


def main() -> None:
    """Run the command line (the `data-streams` console script)."""
    cli(prog_name="data-streams")

"""``supportbot source ...``: add knowledge sources, sync them, see how they are doing.

Scripts rely on two exact forms (keep them working):
``supportbot source add --workspace W --name NAME --type web --sitemap URL`` (or ``--url URL``,
repeatable) and ``supportbot source sync --workspace W --name NAME``, which runs one incremental
sync to the end and exits non-zero when it failed or skipped documents.

Tokens never go on the command line (shell history, ``ps``): ``--token-env VAR`` names an
environment variable holding it, ``--token-stdin`` reads it from standard input; Slack and
Discord sources default to the bot's own ``SLACK_BOT_TOKEN``/``DISCORD_BOT_TOKEN``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from supportbot.app import App
from supportbot.eval_cli import quality_warning
from supportbot.workspace_option import WorkspaceOption

source_app = typer.Typer(
    help="Knowledge sources (folders, web sites, Slack, Discord, Notion) kept in sync.",
    no_args_is_help=True,
)

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

NameOption = Annotated[
    str, typer.Option("--name", "-n", help="Source name (unique per workspace).")
]
KINDS = ("folder", "web", "slack", "discord", "notion")


class SourceCliError(Exception):
    """A usage error of a source command (shown as one line by ``supportbot.cli.main``)."""


@contextmanager
def _app(ctx: typer.Context) -> Iterator[App]:
    with App(ctx.obj) as application:
        yield application


def _secret(env: str | None, stdin: bool, what: str) -> str | None:
    if env and stdin:
        raise SourceCliError(f"give the {what} either with --{what}-env or --{what}-stdin")
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise SourceCliError(f"environment variable {env} (--{what}-env) is not set or empty")
        return value
    if stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise SourceCliError(f"no {what} on standard input (--{what}-stdin)")
        return value
    return None


@source_app.command("add")
def source_add(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    name: NameOption,
    kind: Annotated[
        str, typer.Option("--type", "-t", help="folder, web, slack, discord or notion.")
    ],
    url: Annotated[
        list[str] | None, typer.Option("--url", help="web: a page URL (repeatable).")
    ] = None,
    sitemap: Annotated[
        str | None, typer.Option(help="web: sitemap (or sitemap index) URL.")
    ] = None,
    path: Annotated[str | None, typer.Option(help="folder: the folder to keep in sync.")] = None,
    channel: Annotated[
        list[str] | None, typer.Option("--channel", help="slack/discord: channel id (repeatable).")
    ] = None,
    guild: Annotated[str | None, typer.Option(help="discord: server (guild) id.")] = None,
    page: Annotated[
        list[str] | None, typer.Option("--page", help="notion: root page id (repeatable).")
    ] = None,
    database: Annotated[
        list[str] | None, typer.Option("--database", help="notion: database id (repeatable).")
    ] = None,
    token_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the API token.")
    ] = None,
    token_stdin: Annotated[bool, typer.Option(help="Read the API token from stdin.")] = False,
    refresh_token_env: Annotated[
        str | None, typer.Option(help="OAuth: environment variable holding the refresh token.")
    ] = None,
    client_id: Annotated[str | None, typer.Option(help="OAuth: the app's client id.")] = None,
    client_secret_env: Annotated[
        str | None, typer.Option(help="OAuth: environment variable holding the client secret.")
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="Interval (30m, 1h, 1d), cron ('*/15 * * * *') or manual."),
    ] = None,
    requests_per_second: Annotated[
        float | None, typer.Option(min=0.01, help="This source's request budget.")
    ] = None,
    replace: Annotated[bool, typer.Option(help="Change an existing source.")] = False,
) -> None:
    """Add a source to a workspace (it syncs on its schedule, or with `source sync`)."""
    from sync.connectors import connector_class
    from sync.schedule import parse_schedule

    if kind not in KINDS:
        raise SourceCliError(f"unknown --type {kind!r}: use {', '.join(KINDS)}")
    options: dict[str, dict[str, Any]] = {
        "folder": {"path": path},
        "web": {"urls": url or [], "sitemap": sitemap},
        "slack": {"channels": channel or []},
        "discord": {"channels": channel or [], "guild": guild},
        "notion": {"pages": page or [], "databases": database or []},
    }
    cls = connector_class(kind)
    config = cls.validate_config(options[kind])
    settings = ctx.obj
    credentials = _credentials(
        kind,
        token=_secret(token_env, token_stdin, "token"),
        refresh_token=_secret(refresh_token_env, False, "refresh-token"),
        client_id=client_id,
        client_secret=_secret(client_secret_env, False, "client-secret"),
        settings=settings,
    )
    if cls.needs_credentials and credentials is None and not replace:
        raise SourceCliError(f"a {kind} source needs a token: --token-env VAR or --token-stdin")
    chosen = schedule if schedule is not None else settings.sync_default_schedule
    parsed = parse_schedule(chosen)
    with _app(ctx) as application:
        application.knowledge.workspace(workspace)
        info = application.sync_sources.add(
            workspace,
            name,
            kind=kind,
            config=config,
            credentials=credentials,
            schedule=parsed.text if parsed else None,
            requests_per_second=requests_per_second or settings.sync_requests_per_second,
            replace=replace,
        )
    when = f"every {info.schedule}" if parsed and parsed.interval else info.schedule or "manual"
    out.print(
        f"added {info.kind} source [bold]{info.name}[/] to {info.workspace} (syncs: {when}); "
        f"sync it now with `supportbot source sync --workspace {workspace} --name {name}`"
    )


def _credentials(
    kind: str,
    *,
    token: str | None,
    refresh_token: str | None,
    client_id: str | None,
    client_secret: str | None,
    settings: Any,
) -> dict[str, Any] | None:
    if kind in ("folder", "web"):
        if token or refresh_token:
            raise SourceCliError(f"a {kind} source takes no token")
        return None
    if token is None and kind == "slack" and settings.slack_bot_token is not None:
        token = settings.slack_bot_token.get_secret_value()
    if token is None and kind == "discord" and settings.discord_bot_token is not None:
        token = settings.discord_bot_token.get_secret_value()
    if token is None:
        return None
    credentials: dict[str, Any] = {"token": token}
    if refresh_token:
        if not client_id or not client_secret:
            raise SourceCliError(
                "refreshing a token needs --client-id and --client-secret-env as well"
            )
        credentials.update(
            refresh_token=refresh_token, client_id=client_id, client_secret=client_secret
        )
    return credentials


@source_app.command("list")
def source_list(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a workspace's sources."""
    with _app(ctx) as application:
        infos = application.sync_sources.list(workspace)
    if as_json:
        print(json.dumps({"sources": [i.model_dump(mode="json") for i in infos]}))
        return
    if not infos:
        out.print(f"no sources in {workspace}; add one with `supportbot source add`")
        return
    table = Table("name", "type", "schedule", "status", "last sync", "documents", "chunks")
    for i in infos:
        table.add_row(
            i.name,
            i.kind,
            i.schedule or "manual",
            i.status,
            _when(i.last_finished_at),
            str(i.documents),
            str(i.chunks),
        )
    out.print(table)


@source_app.command("status")
def source_status(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    name: Annotated[str | None, typer.Option("--name", "-n", help="One source only.")] = None,
    runs: Annotated[int, typer.Option(min=0, max=50, help="Recent runs to show.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Last sync, documents, chunks and errors of each source; exit 1 if one is failing."""
    with _app(ctx) as application:
        repo = application.sync_sources
        infos = [repo.info(workspace, name)] if name else repo.list(workspace)
        history = {i.name: repo.runs(workspace, i.name, limit=runs) for i in infos}
        warning = quality_warning(application, workspace)
    failing = [i for i in infos if i.status == "failed"]
    if as_json:
        rows = [
            {
                **i.model_dump(mode="json"),
                "runs": [r.model_dump(mode="json") for r in history[i.name]],
            }
            for i in infos
        ]
        print(json.dumps({"sources": rows, "quality_warning": warning and warning.as_dict()}))
    elif warning is not None:
        out.print(warning.line, markup=False, highlight=False)
    elif not infos:
        out.print(f"no sources in {workspace}")
    for i in infos if not as_json else []:
        out.print(f"[bold]{i.name}[/] ({i.kind}) — {i.status}")
        out.print(
            f"  last sync: {_when(i.last_finished_at)}; last success: {_when(i.last_success_at)}; "
            f"next: {_next_run(i.next_run_at) if i.schedule else 'manual'}",
            highlight=False,
        )
        out.print(f"  documents: {i.documents}, chunks: {i.chunks}", highlight=False)
        if i.last_error:
            out.print(f"  error: {i.last_error}", markup=False, highlight=False)
        for r in history[i.name]:
            out.print(
                f"  run {r.id} {_when(r.started_at)} {r.status} ({r.trigger}): {r.documents} docs, "
                f"{r.changed} changed, {r.deleted} deleted, {r.errors} errors, "
                f"{r.requests} requests, {r.retries} retries",
                highlight=False,
            )
    if failing:
        raise typer.Exit(1)


@source_app.command("sync")
def source_sync(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    name: NameOption,
    full: Annotated[
        bool, typer.Option(help="Start over: re-read everything instead of only changes.")
    ] = False,
    allow_mass_delete: Annotated[
        bool,
        typer.Option(
            "--allow-mass-delete",
            help="Let this sync remove more than half of the source's documents at once "
            "(refused otherwise: it usually means a broken source, not deleted content).",
        ),
    ] = False,
) -> None:
    """Run one sync of a source to the end; exit non-zero if it failed or skipped documents.

    A sync that would remove more than half of a source's documents at once (at least 3 of
    them, or its last ones) removes nothing and fails, saying how many; run it again with
    ``--allow-mass-delete`` when they really are gone.
    """
    started = time.monotonic()
    with _app(ctx) as application:
        application.knowledge.workspace(workspace)
        application.sync_sources.info(workspace, name)  # unknown source: fail before waiting
        with _progress() as on_progress:
            run = asyncio.run(
                application.sync_engine.sync(
                    workspace,
                    name,
                    full=full,
                    trigger="cli",
                    on_progress=on_progress,
                    allow_mass_delete=allow_mass_delete,
                )
            )
    elapsed = time.monotonic() - started
    err.print(
        f"{workspace}/{name}: {run.documents} documents ({run.changed} changed, "
        f"{run.unchanged} unchanged), {run.deleted} deleted, +{run.chunks_added} / "
        f"-{run.chunks_removed} chunks, {run.errors} errors, {run.requests} requests "
        f"in {elapsed:.1f}s",
        highlight=False,
    )
    if run.status == "failed":
        raise SourceCliError(f"sync of {workspace}/{name} failed: {run.error}")
    if run.errors:
        err.print(f"skipped: {run.error}", markup=False, highlight=False)
        raise typer.Exit(1)
    if run.error:  # content the source has that was not indexed, counted by kind
        err.print(run.error, markup=False, highlight=False)


@contextmanager
def _progress() -> Iterator[Any]:
    progress = Progress(
        TextColumn("syncing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("documents"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = progress.add_task("sync", total=None)

    def on_progress(done: int, planned: int | None) -> None:
        progress.update(task, completed=done, total=planned)

    with progress:
        yield on_progress


@source_app.command("remove")
def source_remove(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    name: NameOption,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a source and everything it brought into the workspace."""
    if not yes and not typer.confirm(f"Remove source {name!r} and its documents from {workspace}?"):
        raise typer.Exit(1)
    with _app(ctx) as application:
        record = application.sync_sources.get(workspace, name)
        chunks = application.knowledge.delete_origin(workspace, record.origin)
        application.sync_sources.remove(workspace, name)
    out.print(f"removed source [bold]{name}[/] from {workspace} ({chunks} chunks deleted)")


def worker(
    ctx: typer.Context,
    schedule: Annotated[
        bool, typer.Option(help="Also queue sources when their schedule says so.")
    ] = True,
) -> None:
    """Run sync jobs until interrupted (a worker of the Redis queue when REDIS_URL is set)."""
    from supportbot.background_sync import run_background_sync

    with _app(ctx) as application:
        application.knowledge  # noqa: B018  (a broken setup fails now, not at the first job)
        asyncio.run(run_background_sync(application, schedule=schedule))


def _next_run(moment: datetime | None) -> str:
    # The scheduler of `supportbot run` / `supportbot worker` plans the next run when it starts.
    return _when(moment) if moment else "when `supportbot run` or a worker is running"


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "never"

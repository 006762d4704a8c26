"""The ``supportbot`` command line.

Other tools script against ``search --json`` and ``ask --json``: their output shapes are a
contract (see README). Every failure a user can cause ends in one line on stderr that says what
happened and what to do, and a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

try:  # typer >= 0.2x vendors click; older versions depend on it
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    # click may be installed besides (a dependency of other tools): mypy then sees two types.
    from click.exceptions import (  # type: ignore[no-redef,assignment,unused-ignore]
        ClickException,
        UsageError,
    )

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from console.errors import ConsoleError
from feedback.errors import FeedbackError
from retrieval.chain import group_by_document
from retrieval.errors import RetrievalError
from retrieval.ingest import IngestReport
from retrieval.loaders import iter_files
from retrieval.store import SearchMode, SearchResult
from retrieval.tenant_activity import TenantActivityInfo
from retrieval.workspaces import IdentityKind
from supportbot.admin_cli import admin_app, web_command
from supportbot.app import App
from supportbot.chat import run_chat
from supportbot.eval_cli import eval_command
from supportbot.feedback_cli import feedback_app
from supportbot.logredact import install_redaction
from supportbot.settings import Settings, SettingsError
from supportbot.source_cli import SourceCliError, source_app
from supportbot.source_cli import worker as source_worker
from supportbot.workspace_option import WorkspaceOption, workspace_name
from sync.errors import SyncBusyError, SyncError

app = typer.Typer(
    help="Customer-support chatbot for Slack and Discord, answering from each workspace's own "
    "knowledge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
workspace_app = typer.Typer(
    help="Create, list, delete and re-index workspaces.", no_args_is_help=True
)
weaviate_app = typer.Typer(
    help="The embedded Weaviate server of this data directory.", no_args_is_help=True
)
app.add_typer(workspace_app, name="workspace")
app.add_typer(weaviate_app, name="weaviate")
app.add_typer(feedback_app, name="feedback")
app.add_typer(source_app, name="source")
app.add_typer(admin_app, name="admin")
app.command("web")(web_command)
app.command("worker")(source_worker)
app.command("eval")(eval_command)

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class CliError(Exception):
    """A usage error found by the CLI itself."""


@contextmanager
def _app(ctx: typer.Context) -> Iterator[App]:
    with App(ctx.obj) as application:
        yield application


@app.callback()
def _main(ctx: typer.Context) -> None:
    """Load settings from the environment and .env once, for every command."""
    settings = Settings.load()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_redaction(settings.secret_values())  # no token in any log line, at any level
    if not sys.warnoptions:  # weaviate-client turns every warning on when imported; the
        # embedded Weaviate outlives the command on purpose: no ResourceWarning about it.
        warnings.filterwarnings("ignore", category=ResourceWarning)
    # pdfminer warns about every imperfect font it meets (e.g. "Could not get FontBBox"): the
    # text still comes out, and the user cannot act on it. Its errors still show.
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("pdfminer").setLevel(logging.ERROR)
    ctx.obj = settings


# --- workspaces --------------------------------------------------------------------------------


@workspace_app.command("create")
def workspace_create(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="Workspace name: 1-63 ASCII letters, digits, '-', '_' or Hangul syllables."
        ),
    ],
    slack_team: Annotated[list[str] | None, typer.Option(help="Slack team id (T...).")] = None,
    slack_enterprise: Annotated[
        list[str] | None, typer.Option(help="Slack Enterprise Grid org id (E...).")
    ] = None,
    discord_guild: Annotated[list[str] | None, typer.Option(help="Discord guild id.")] = None,
    discord_dm_default: Annotated[
        bool, typer.Option(help="Answer Discord DMs with no other match from this workspace.")
    ] = False,
) -> None:
    """Create a workspace with its own, empty Weaviate tenant."""
    identities = (
        [(IdentityKind.SLACK_TEAM, v) for v in slack_team or []]
        + [(IdentityKind.SLACK_ENTERPRISE, v) for v in slack_enterprise or []]
        + [(IdentityKind.DISCORD_GUILD, v) for v in discord_guild or []]
        + ([(IdentityKind.DISCORD_DM_DEFAULT, "default")] if discord_dm_default else [])
    )
    with _app(ctx) as application:
        info = application.knowledge.create_workspace(name, identities)
    out.print(f"created workspace [bold]{info.name}[/] (tenant {info.tenant})")


@workspace_app.command("list")
def workspace_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List workspaces with their platform identities and whether their tenant is hot (in
    Weaviate's memory) or cold (on disk only), with the last use and reactivation."""
    activity: dict[str, TenantActivityInfo] = {}
    with _app(ctx) as application:
        workspaces = application.registry.list()
        if workspaces:
            try:
                activity = {a.workspace: a for a in application.tenant_activity.report()}
            except RetrievalError as e:  # Weaviate down: the registry is still worth listing
                err.print(f"warning: tenant activity unknown: {e}", markup=False, highlight=False)
    if as_json:
        rows = [
            {
                "name": w.name,
                "tenant": w.tenant,
                "embedding_model": w.embedding_model,
                "identities": [{"kind": k, "id": i} for k, i in w.identities],
                "created_at": w.created_at.isoformat(),
                "activity": _activity_json(activity.get(w.name)),
            }
            for w in workspaces
        ]
        print(json.dumps({"workspaces": rows}, ensure_ascii=False))
        return
    if not workspaces:
        out.print("no workspaces yet; create one with `supportbot workspace create NAME`")
        return
    table = Table(
        "name", "identities", "embedding model", "created", "tenant", "last used",
        "last reactivation",
    )  # fmt: skip
    for w in workspaces:
        ids = ", ".join(f"{k}={i}" for k, i in w.identities) or "-"
        info = activity.get(w.name)
        state = info.state.value if info else "unknown"
        used = _when(info.last_used_at) if info else "-"
        reactivated = (
            f"{info.reactivation_ms:.0f} ms, {_when(info.reactivated_at)}"
            if info and info.reactivation_ms is not None
            else "-"
        )
        table.add_row(w.name, ids, w.embedding_model, _when(w.created_at), state, used, reactivated)
    out.print(table)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _activity_json(info: TenantActivityInfo | None) -> dict[str, Any]:
    """``state`` is hot, cold, missing or unknown (Weaviate unreachable); times ISO 8601 UTC."""
    if info is None:
        return {"state": "unknown"}

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "state": info.state.value,
        "last_used_at": iso(info.last_used_at),
        "deactivated_at": iso(info.deactivated_at),
        "reactivated_at": iso(info.reactivated_at),
        "reactivation_ms": info.reactivation_ms,
    }


@workspace_app.command("delete")
def workspace_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Workspace to delete (its exact name).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a workspace and everything it owns: knowledge, answers, ratings, verified answers,
    DM choices, channel settings, sources with their credentials and sync state, and the Slack
    installations of its teams. Interrupted, run it again: it finishes the job."""
    if not yes and not typer.confirm(
        f"Delete workspace {name!r} with its knowledge, answers, ratings, sources and credentials?"
    ):
        raise typer.Exit(1)
    with _app(ctx) as application:
        counts = asyncio.run(_delete_workspace(application, name))
    deleted = ", ".join(f"{n} {kind}" for kind, n in counts.items() if n and kind != "workspace")
    what = "workspace" if counts.get("workspace") else "leftovers of workspace"
    out.print(
        f"deleted {what} {name}" + (f" ({deleted})" if deleted else ""),
        markup=False,
        highlight=False,
    )


# How long `workspace delete` waits for a running sync of the workspace to finish.
DELETE_LOCK_WAIT_S = 60.0


async def _delete_workspace(application: App, name: str) -> dict[str, int]:
    """Delete while holding the workspace's sync lock, so no sync writes into it meanwhile
    (and none still running can write into a workspace created again under its name)."""
    try:
        async with application.sync_locks.hold(name, wait_s=DELETE_LOCK_WAIT_S):
            return await asyncio.to_thread(application.knowledge.delete_workspace, name)
    except SyncBusyError as e:
        raise CliError(
            f"a sync of workspace {name!r} is still running after {DELETE_LOCK_WAIT_S:.0f} s; "
            "nothing deleted: run `supportbot workspace delete` again when it has finished"
        ) from e


@workspace_app.command("prompts")
def workspace_prompts(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="Workspace (its exact name).", callback=workspace_name)
    ],
    prompts: Annotated[
        list[str] | None,
        typer.Argument(
            help='Up to 4 prompts, each "title=message" (title: the button, up to 75 '
            "characters; message: the question it sends). They replace the current ones.",
            show_default=False,
        ),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove them: the built-in defaults are offered.")
    ] = False,
) -> None:
    """Set, show or clear the suggested prompts Slack offers in a new chat with the bot.

    With no prompts and no --clear, shows the current ones. Example:
    supportbot workspace prompts acme "Reset my password=How do I reset my password?"
    """
    from bot.slack.prompts import PromptError, PromptStore, parse_prompt

    if clear and prompts:
        raise CliError("give prompts or --clear, not both")
    try:
        parsed = [parse_prompt(p) for p in prompts or []]
        with _app(ctx) as application:
            application.registry.get(name)  # an unknown name: one line naming look-alikes
            store = PromptStore(application.engine)
            if clear:
                removed = store.clear(name)
                out.print(f"{name}: {removed} suggested prompts removed; the defaults are offered")
                return
            if parsed:
                store.set(name, parsed)
            current = store.get(name)
    except PromptError as e:
        raise CliError(str(e)) from e
    if not current:
        out.print(f"{name}: no suggested prompts set; the defaults are offered", markup=False)
        return
    verb = "set" if parsed else "has"
    out.print(f"{name} {verb} {len(current)} suggested prompts:", markup=False, highlight=False)
    for prompt in current:
        out.print(f"  {prompt.title} = {prompt.message}", markup=False, highlight=False)


@workspace_app.command("escalation")
def workspace_escalation(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="Workspace (its exact name).", callback=workspace_name)
    ],
    slack_channel: Annotated[
        list[str] | None,
        typer.Option(
            "--slack-channel",
            help="Slack channel id (C…/G…) where handoffs are posted; repeat for several.",
            show_default=False,
        ),
    ] = None,
    slack_usergroup: Annotated[
        list[str] | None,
        typer.Option(
            "--slack-usergroup",
            help="Slack user group id (S…) mentioned in the handoff post; repeat for several.",
            show_default=False,
        ),
    ] = None,
    discord_channel: Annotated[
        str | None,
        typer.Option(
            help="Discord staff channel id where handoffs are posted.", show_default=False
        ),
    ] = None,
    discord_role: Annotated[
        str | None,
        typer.Option(help="Discord role id mentioned in the handoff post.", show_default=False),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the target: the bot offers no handoff.")
    ] = False,
) -> None:
    """Set, show or clear who the bot hands conversations to (a person asked, no answer found,
    or the "Talk to a human" button).

    Options given replace that platform's part of the target; with no option, shows it.
    Without a target on a platform the bot never offers a person there. Example:
    supportbot workspace escalation acme --slack-channel C024BE91L --slack-usergroup S0614TZR7
    """
    from dataclasses import replace

    from bot.handoff import (
        EscalationTarget,
        HandoffError,
        check_slack_channel,
        check_slack_usergroup,
        check_snowflake,
    )

    changes: dict[str, object] = {}
    try:
        if slack_channel:
            changes["slack_channels"] = tuple(
                dict.fromkeys(map(check_slack_channel, slack_channel))
            )
        if slack_usergroup:
            groups = map(check_slack_usergroup, slack_usergroup)
            changes["slack_usergroups"] = tuple(dict.fromkeys(groups))
        if discord_channel is not None:
            changes["discord_channel"] = check_snowflake(discord_channel, "channel")
        if discord_role is not None:
            changes["discord_role"] = check_snowflake(discord_role, "role")
    except HandoffError as e:
        raise CliError(str(e)) from e
    if clear and changes:
        raise CliError("give target options or --clear, not both")
    with _app(ctx) as application:
        application.registry.get(name)  # an unknown name: one line naming look-alikes
        store = application.conversations.handoffs
        if clear:
            store.set_target(name, EscalationTarget())
        elif changes:
            store.set_target(name, replace(store.target(name), **changes))  # type: ignore[arg-type]
        target = store.target(name)
    if target.empty:
        out.print(f"{name}: no escalation target; the bot offers no handoff", markup=False)
        return
    for platform in ("slack", "discord"):
        shown = target.describe(platform) if target.configured_for(platform) else "none"
        out.print(f"{name} {platform}: {shown}", markup=False, highlight=False)


@workspace_app.command("reindex")
def workspace_reindex(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Workspace to re-embed.")]
) -> None:
    """Re-embed every chunk with the configured embedding model."""
    with _app(ctx) as application:
        total = application.knowledge.reindex(name)
    out.print(
        f"re-embedded {total} chunks of [bold]{name}[/] with "
        f"{application.settings.resolved_embedding_model}"
    )


# --- ingestion ---------------------------------------------------------------------------------


@app.command()
def ingest(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files and folders (Markdown, text, HTML, PDF).")
    ] = None,
    jsonl: Annotated[
        Path | None, typer.Option(help='JSON lines {"id", "title", "text", "url"?}, one per line.')
    ] = None,
    prune: Annotated[
        bool, typer.Option(help="Remove stored files under PATHS that no longer exist.")
    ] = False,
) -> None:
    """Ingest files, folders or a JSONL file into a workspace (re-runs store only changes)."""
    if not paths and jsonl is None:
        raise CliError("nothing to ingest: give PATH... and/or --jsonl FILE")
    with _app(ctx) as application:
        kb = application.knowledge
        kb.workspace(workspace)
        reports = []
        if paths:
            total = sum(1 for _ in iter_files([p for p in paths if p.exists()]))
            with _progress(total, "files") as on_item:
                reports.append(kb.ingest_paths(workspace, paths, prune=prune, on_item=on_item))
        if jsonl is not None:
            total = _count_lines(jsonl)
            with _progress(total, "records") as on_item:
                reports.append(kb.ingest_jsonl(workspace, jsonl, on_item=on_item))
        changed = [doc for r in reports for doc in r.changed_ids]
        if changed:  # the evaluation gate: a bounded sample; it never fails the ingest
            application.after_knowledge_change(workspace, changed, "ingest")
    report = _merge(reports)
    for note in report.invalid_urls:
        err.print(note, markup=False, highlight=False)
    dropped = f", {len(report.invalid_urls)} invalid URLs dropped" if report.invalid_urls else ""
    err.print(
        f"{workspace}: {report.documents} documents ({report.changed} changed, "
        f"{report.unchanged} unchanged), +{report.chunks_added} / -{report.chunks_removed} chunks, "
        f"{report.pruned_documents} pruned, {len(report.errors)} skipped{dropped}"
    )
    if report.errors:
        raise typer.Exit(1)


@contextmanager
def _progress(total: int, unit: str) -> Iterator[Any]:
    progress = Progress(
        TextColumn("ingesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )
    task = progress.add_task("ingest", total=total or None)

    def on_item(_name: str, error: str | None) -> None:
        if error:
            progress.console.print(f"skipped: {error}", markup=False, highlight=False)
        progress.advance(task)

    with progress:
        yield on_item


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


def _merge(reports: list[IngestReport]) -> IngestReport:
    merged = IngestReport()
    for r in reports:
        merged.documents += r.documents
        merged.unchanged += r.unchanged
        merged.changed += r.changed
        merged.chunks_added += r.chunks_added
        merged.chunks_removed += r.chunks_removed
        merged.pruned_documents += r.pruned_documents
        merged.errors.extend(r.errors)
        merged.invalid_urls.extend(r.invalid_urls)
    return merged


# --- search and answers ------------------------------------------------------------------------


def _result_json(result: SearchResult) -> dict[str, Any]:
    return {
        "chunk_id": result.chunk_id,
        "doc_id": result.doc_id,
        "source": result.source,
        "title": result.title,
        "text": result.text,
        "score": round(result.score, 6),
    }


@app.command()
def search(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    query: Annotated[str | None, typer.Argument(help="The search query.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Number of results.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid (default), keyword or vector.")] = "hybrid",
    alpha: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="Hybrid weight of the vector side (default: settings)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    queries_file: Annotated[
        Path | None, typer.Option(help='JSON lines {"id", "query"}: one JSON line out per query.')
    ] = None,
) -> None:
    """Search a workspace's knowledge."""
    if mode not in ("hybrid", "keyword", "vector"):
        raise CliError(f"unknown --mode {mode!r}: use hybrid, keyword or vector")
    search_mode: SearchMode = mode  # type: ignore[assignment]
    if (query is None) == (queries_file is None):
        raise CliError("give either QUERY or --queries-file F")
    with _app(ctx) as application:
        kb = application.knowledge
        if queries_file is not None:
            ids, queries = _read_queries(queries_file)
            batches = kb.search_many(workspace, queries, k=k, mode=search_mode, alpha=alpha)
            for query_id, results in zip(ids, batches, strict=True):
                print(
                    json.dumps(
                        {"id": query_id, "results": [_result_json(r) for r in results]},
                        ensure_ascii=False,
                    )
                )
            return
        assert query is not None
        results = kb.search(workspace, query, k=k, mode=search_mode, alpha=alpha)
    if as_json:
        print(json.dumps({"results": [_result_json(r) for r in results]}, ensure_ascii=False))
        return
    if not results:
        out.print("no results")
    for n, r in enumerate(results, start=1):
        out.print(f"[bold]{n}. {r.title}[/] ({r.source})  score={r.score:.3f}")
        out.print(r.text[:400], markup=False, highlight=False)
        out.print()


def _read_queries(path: Path) -> tuple[list[Any], list[str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read queries file {path}: {e}") from e
    ids: list[Any] = []
    queries: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CliError(f"{path}:{number}: not valid JSON ({e.msg})") from e
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("query"), str)
            or "id" not in record
        ):
            raise CliError(f'{path}:{number}: expected {{"id": ..., "query": "..."}}')
        ids.append(record["id"])
        queries.append(record["query"])
    return ids, queries


@app.command()
def ask(
    ctx: typer.Context,
    workspace: WorkspaceOption,
    question: Annotated[str, typer.Argument(help="The question.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Answer one question from a workspace's knowledge, with sources."""
    with _app(ctx) as application:
        answer = application.answer_chain(workspace).answer(question)
    if as_json:
        payload = {
            "answer": answer.text,
            "sources": [
                {"n": s.n, "doc_id": s.doc_id, "source": s.source, "title": s.title}
                for s in answer.sources
            ],
            "mode": answer.mode,
        }
        print(json.dumps(payload, ensure_ascii=False))
        return
    out.print(answer.text, markup=False, highlight=False)
    for numbers, source in group_by_document(answer.sources):
        cited = "".join(f"[{n}]" for n in numbers)
        out.print(
            f"{cited} {source.title} — {source.url or source.source}", markup=False, highlight=False
        )


@app.command()
def chat(ctx: typer.Context, workspace: WorkspaceOption) -> None:
    """Chat with the bot in the terminal, and rate its answers."""
    with _app(ctx) as application:
        run_chat(application, workspace, console=out)


@app.command()
def demo(
    ctx: typer.Context,
    workspace: Annotated[
        str, typer.Option(help="Name of the demo workspace.", callback=workspace_name)
    ] = "demo",
    no_chat: Annotated[bool, typer.Option(help="Set up only; do not open the chat.")] = False,
) -> None:
    """Create a demo workspace, sync the bundled sample knowledge base and open the chat.

    The sample knowledge base becomes two folder sources of the workspace (``sample-en``,
    ``sample-ko``), so the web console's Sources page can show and sync them.
    """
    from supportbot.demo_setup import sync_sample_sources

    with _app(ctx) as application:
        err.print("starting Weaviate and the embedding model...")
        kb = application.knowledge
        if workspace not in {w.name for w in application.registry.list()}:
            kb.create_workspace(workspace)
            err.print(f"created workspace {workspace!r}")
        err.print("syncing the sample knowledge base (only changes after the first run)...")
        runs = sync_sample_sources(application, workspace)
        err.print(
            f"{workspace}: {sum(r.documents for r in runs)} documents, "
            f"+{sum(r.chunks_added for r in runs)} chunks "
            f"({sum(r.unchanged for r in runs)} unchanged) from the folder sources "
            + ", ".join(r.source for r in runs)
        )
        if no_chat:
            return
        run_chat(application, workspace, console=out)


channel_app = typer.Typer(help="Per-channel bot settings.", no_args_is_help=True)
app.add_typer(channel_app, name="channel")


@channel_app.command("mode")
def channel_mode(
    ctx: typer.Context,
    channel: Annotated[str, typer.Argument(help="Channel id (Slack C..., Discord channel id).")],
    mode: Annotated[
        str, typer.Argument(help="mention (answer only when mentioned) or all_questions.")
    ],
    slack_team: Annotated[str | None, typer.Option(help="Slack team id (T...).")] = None,
    discord_guild: Annotated[str | None, typer.Option(help="Discord guild id.")] = None,
) -> None:
    """Answer only when mentioned (default), or every new question in a support channel."""
    from bot.channels import ChannelSettings
    from bot.decide import ChannelMode

    if (slack_team is None) == (discord_guild is None):
        raise CliError("give exactly one of --slack-team or --discord-guild")
    try:
        chosen = ChannelMode(mode)
    except ValueError as e:
        raise CliError(f"unknown mode {mode!r}: use mention or all_questions") from e
    platform, team = ("slack", slack_team) if slack_team else ("discord", discord_guild)
    assert team is not None
    with _app(ctx) as application:
        ChannelSettings(application.engine).set_mode(platform, team, channel, chosen)
    out.print(f"{platform} channel {channel}: {chosen.value}")


@app.command()
def run(
    ctx: typer.Context,
    slack_http: Annotated[
        bool, typer.Option(help="Serve Slack's Events API at /slack/events instead of Socket Mode.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port for --slack-http.")] = 3000,
    host: Annotated[str, typer.Option(help="Address for --slack-http.")] = "0.0.0.0",
) -> None:
    """Run the bots whose tokens are set (Slack over Socket Mode by default)."""
    import asyncio

    from supportbot.run import RunError, run_bots

    with _app(ctx) as application:
        try:
            asyncio.run(run_bots(application, slack_http=slack_http, host=host, port=port))
        except RunError as e:
            raise CliError(str(e)) from e


# --- embedded Weaviate -------------------------------------------------------------------------


@weaviate_app.command("status")
def weaviate_status(ctx: typer.Context) -> None:
    """Show whether this data directory's embedded Weaviate is running."""
    application = App(ctx.obj)
    if application.settings.weaviate_url:
        out.print(f"using external Weaviate at {application.settings.weaviate_url}")
        return
    address = application.embedded_weaviate.running_address()
    if address is None:
        out.print(
            "embedded Weaviate is not running (it starts with the first command that needs it)"
        )
    else:
        out.print(
            f"embedded Weaviate running at http://{address.host}:{address.http_port} "
            f"(gRPC {address.grpc_port})"
        )


@weaviate_app.command("stop")
def weaviate_stop(ctx: typer.Context) -> None:
    """Stop this data directory's embedded Weaviate."""
    stopped = App(ctx.obj).embedded_weaviate.stop()
    out.print("stopped embedded Weaviate" if stopped else "embedded Weaviate was not running")


def main() -> None:
    """Entry point: run the CLI and turn known failures into one-line errors."""
    try:
        code = app(standalone_mode=False)
    except UsageError as e:
        if e.format_message():  # empty when a group was called bare: its help is shown already
            where = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
            err.print(f"error: {e.format_message()}{where}", markup=False, highlight=False)
        sys.exit(2)
    except ClickException as e:
        err.print(f"error: {e.format_message()}", markup=False, highlight=False)
        sys.exit(e.exit_code)
    except (
        RetrievalError,
        FeedbackError,
        CliError,
        SyncError,
        SourceCliError,
        SettingsError,
        ConsoleError,
    ) as e:
        err.print(f"error: {e}", markup=False, highlight=False)
        sys.exit(1)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        err.print(
            f"error: invalid setting {field}: {first.get('msg')}", markup=False, highlight=False
        )
        sys.exit(1)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # anything unexpected: still one line
        err.print(
            f"error: unexpected {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
            "(set SUPPORTBOT_LOG_LEVEL=DEBUG for details)",
            markup=False,
            highlight=False,
        )
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        sys.exit(2)
    if isinstance(code, int) and code:
        sys.exit(code)

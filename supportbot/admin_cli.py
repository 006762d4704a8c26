"""``supportbot admin``: console users and their grants; ``supportbot web``: the console.

Passwords come from stdin (``--password-stdin``), never from the command line, where other
users of the machine could read them in the process list.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from console.errors import UserError
from console.models import Role
from console.users import ConsoleUsers
from supportbot.app import App
from supportbot.workspace_option import WorkspaceOption, workspace_name

admin_app = typer.Typer(help="Web console users and their workspace grants.", no_args_is_help=True)
out = Console(soft_wrap=True)

RoleOption = Annotated[Role, typer.Option("--role", help="admin: read and change; viewer: read.")]


@contextmanager
def _users(ctx: typer.Context) -> Iterator[tuple[App, ConsoleUsers]]:
    with App(ctx.obj) as application:
        yield application, ConsoleUsers(application.engine)


def _password_from_stdin() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("password: ")
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def _known_workspace(application: App, name: str) -> str:
    return application.registry.get(name).name  # UnknownWorkspaceError: one line, exit 1


@admin_app.command("add-user")
def add_user(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The sign-in name.")],
    workspace: WorkspaceOption,
    role: RoleOption = Role.VIEWER,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin (first line)."),
    ] = False,
) -> None:
    """Create a console user with a password and a grant on one workspace."""
    if not password_stdin:
        raise UserError("give the password on stdin with --password-stdin")
    password = _password_from_stdin()
    with _users(ctx) as (application, users):
        name = _known_workspace(application, workspace_name(workspace))
        users.add_user(email, password=password, workspace=name, role=role)
    out.print(f"added {email.strip().lower()}: {role.value} of {name}", markup=False)


@admin_app.command("set-password")
def set_password(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The sign-in name.")],
) -> None:
    """Replace a user's password (read from stdin) and sign them out everywhere."""
    password = _password_from_stdin()
    with _users(ctx) as (_application, users):
        users.set_password(email, password)
    out.print(f"password changed for {email.strip().lower()}", markup=False)


@admin_app.command("grant")
def grant(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The sign-in name.")],
    workspace: WorkspaceOption,
    role: RoleOption = Role.VIEWER,
) -> None:
    """Give a user a role in another workspace (or change their role in one)."""
    with _users(ctx) as (application, users):
        name = _known_workspace(application, workspace_name(workspace))
        users.grant(email, name, role)
    out.print(f"{email.strip().lower()}: {role.value} of {name}", markup=False)


@admin_app.command("revoke")
def revoke(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The sign-in name.")],
    workspace: WorkspaceOption,
) -> None:
    """Take a user's grant on one workspace away."""
    with _users(ctx) as (_application, users):
        users.revoke(email, workspace_name(workspace))
    out.print(f"{email.strip().lower()}: no longer in {workspace_name(workspace)}", markup=False)


@admin_app.command("remove-user")
def remove_user(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(help="The sign-in name.")],
) -> None:
    """Delete a user, their grants and their sessions."""
    with _users(ctx) as (_application, users):
        users.remove(email)
    out.print(f"removed {email.strip().lower()}", markup=False)


@admin_app.command("list")
def list_users(ctx: typer.Context) -> None:
    """Every console user and their grants."""
    with _users(ctx) as (_application, users):
        summaries = users.list_users()
    if not summaries:
        out.print("no console users: add one with `supportbot admin add-user`")
    for user in summaries:
        grants = ", ".join(f"{w} ({r.value})" for w, r in sorted(user.grants.items())) or "-"
        how = "password" if user.has_password else "Slack"
        out.print(f"{user.email}\t{how}\t{grants}", markup=False, highlight=False)


def web_command(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Serve the web console (sign in with a user from `supportbot admin add-user`)."""
    import uvicorn

    from console.app import build_console

    with App(ctx.obj) as application:
        console = build_console(application, application.settings)
        out.print(f"console at http://{host}:{port}/", markup=False)
        uvicorn.run(console, host=host, port=port, log_level="warning", server_header=False)

"""``supportbot admin``: console users and their grants; ``supportbot web``: the console.

Passwords come from stdin (``--password-stdin``), never from the command line, where other
users of the machine could read them in the process list.
"""

from __future__ import annotations

import errno
import socket
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
err = Console(stderr=True, soft_wrap=True)

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

    listener = _listen(host, port)  # a port in use: one line, before anything is printed
    with App(ctx.obj) as application:
        settings = application.settings
        console = build_console(application, settings)
        everywhere = host in ("0.0.0.0", "::", "")
        shown = "127.0.0.1" if everywhere else f"[{host}]" if ":" in host else host
        where = " (all addresses: other machines use this machine's name)" if everywhere else ""
        out.print(f"console at http://{shown}:{listener.getsockname()[1]}/{where}", markup=False)
        if settings.console_secure_cookies and host not in ("127.0.0.1", "localhost", "::1"):
            err.print(
                "note: browsers sign in only over HTTPS or at localhost (Secure cookies): put a "
                "TLS proxy in front, or set CONSOLE_SECURE_COOKIES=false on a trusted network",
                markup=False,
            )
        if not ConsoleUsers(application.engine).list_users() and not settings.slack_client_id:
            err.print(
                "warning: no console users in this database: add one with `supportbot admin "
                "add-user EMAIL --workspace W --role admin --password-stdin` (same "
                "SUPPORTBOT_DATA_DIR or DATABASE_URL as this command)",
                markup=False,
            )
        config = uvicorn.Config(console, log_level="warning", server_header=False)
        uvicorn.Server(config).run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn listens on it).

    Raises :class:`UserError` (one line) when the port is taken or the address is not this
    machine's.
    """
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
    except OSError as e:
        listener.close()
        if e.errno == errno.EADDRINUSE:
            raise UserError(
                f"port {port} on {host} is already in use (another `supportbot web` or "
                "`supportbot run --slack-http`?): stop it, or choose another with --port"
            ) from e
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
    return listener

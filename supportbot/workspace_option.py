"""The ``--workspace`` option every command shares: one validation for all of them.

The name is checked (and NFC-normalised) by
:func:`retrieval.workspace_names.normalize_workspace_name` before the command runs, so ``acme``
followed by a newline, a zero-width space or a full-width form fails the same way everywhere,
as one line. Whether the workspace exists is checked by the command through
:meth:`retrieval.workspaces.WorkspaceRegistry.get` (exact match; a look-alike is named in the
error).
"""

from __future__ import annotations

from typing import Annotated

import typer

from retrieval.workspace_names import InvalidWorkspaceNameError, normalize_workspace_name


def workspace_name(value: str) -> str:
    """Typer callback: the NFC name, or a usage error that says what is wrong with it."""
    try:
        return normalize_workspace_name(value)
    except InvalidWorkspaceNameError as e:
        raise typer.BadParameter(str(e)) from None


WorkspaceOption = Annotated[
    str, typer.Option("--workspace", "-w", help="Workspace name.", callback=workspace_name)
]

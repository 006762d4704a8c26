"""Fine-tuning exports (``/w/{workspace}/exports``): the options of ``supportbot feedback
export`` (format, splits, scrub, labels, model-written answers only) and the export of this
workspace only, downloaded as a zip that is streamed as it is written. Data:
:mod:`console.queries.exports`.

Downloading reads, so viewers may; only an admin may turn scrubbing off (the unscrubbed
texts carry what users pasted: e-mail addresses, phone and card numbers).
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from console.access import application_of, render, workspace_of
from console.errors import InvalidInputError
from console.queries.exports import FORMATS, LABELS, ExportForm, build_export


def _form(request: Request) -> ExportForm:
    q = request.query_params
    return ExportForm(
        format=q.get("format", "sft"),
        split=q.get("split", "80/10/10")[:40],
        scrub=q.get("scrub", "on") != "off",
        labels=q.get("labels", "explicit"),
        llm_only=q.get("llm_only") == "on",
    )


async def exports(request: Request) -> Response:
    workspace_of(request)
    return render(
        request,
        "exports.html",
        {"formats": FORMATS, "labels": LABELS, "form": ExportForm(format="sft")},
    )


async def download(request: Request) -> Response:
    form = _form(request)
    workspace = workspace_of(request, write=not form.scrub)
    application = application_of(request)
    known = {w.name for w in application.registry.list()}
    try:
        built = await run_in_threadpool(
            lambda: build_export(
                application.engine,
                workspace,
                form,
                similarity=application.settings.feedback_dpo_similarity,
                embed=lambda texts: application.embedder.embed_queries(list(texts)),
                clock=lambda: datetime.now(UTC),
                known_workspaces=known,
            )
        )
    except InvalidInputError as e:
        if "unknown workspace" in str(e):
            raise HTTPException(404) from e
        return render(
            request,
            "exports.html",
            {"formats": FORMATS, "labels": LABELS, "form": form, "error": str(e)},
            status_code=400,
        )
    return StreamingResponse(
        built.stream(),
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{built.filename}"'},
    )


routes: list[BaseRoute] = [
    Route("/w/{workspace}/exports", exports, methods=["GET"]),
    Route("/w/{workspace}/exports/download", download, methods=["GET"]),
]

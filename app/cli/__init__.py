"""The `rlhf-registry` command: one Typer application, one module per command group.

Server-side commands (`serve`, `worker`, `migrate`, `admin`, `blobs gc`) act on the configured database
and store; every other command is a client of the REST API (`RLHF_REGISTRY_URL`, `RLHF_REGISTRY_TOKEN`).
Every command runs under the one error printer of `app.cli.console`: a user's mistake ends in one line
and exit code 1 (2 for a usage mistake), never a traceback. Heavy modules (pyarrow, the server's
stack) are imported inside the commands that need them, so that start-up stays light.
"""

from __future__ import annotations

import typer

from app.cli import (
    audit,
    blobs,
    campaigns,
    criteria,
    data,
    demonstrations,
    imports,
    lineage,
    models,
    packages,
    projects,
    records,
    runs,
    server,
    tokens,
)
from app.cli.console import GuidedGroup

app = typer.Typer(
    cls=GuidedGroup,
    help="rlhf-registry: governance and artifact registry for RLHF workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.add_to(app)
app.command()(tokens.me)
app.command()(records.push)
app.command()(records.get)
app.command("trace")(lineage.trace)
app.command("revoke")(lineage.revoke)
app.command("verify")(packages.verify)
app.command("import")(imports.import_export)
app.add_typer(projects.projects_app, name="projects")
app.add_typer(records.records_app, name="records")
app.add_typer(blobs.blobs_app, name="blobs")
app.add_typer(criteria.criteria_app, name="criteria")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(data.prompts_app, name="prompts")
app.add_typer(data.batches_app, name="batches")
app.add_typer(data.datasets_app, name="datasets")
app.add_typer(demonstrations.demonstrations_app, name="demonstrations")
app.add_typer(runs.runs_app, name="runs")
app.add_typer(campaigns.campaigns_app, name="campaigns")
app.add_typer(models.models_app, name="models")
app.add_typer(lineage.deployments_app, name="deployments")
app.add_typer(packages.package_app, name="package")
app.add_typer(tokens.tokens_app, name="tokens")


def main() -> None:
    app(prog_name="rlhf-registry")


__all__ = ["app", "main"]

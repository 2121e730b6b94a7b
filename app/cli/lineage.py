"""CLI for the model side: trace a record, approve or reject a deployment, revoke a record."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.tree import Tree

from app.cli.console import out
from app.cli.references import FORMS, label, name_and_version, resolve
from app.client import RegistryClient

RecordArg = Annotated[str, typer.Argument(metavar="RECORD", help=f"{FORMS}, or PROJECT/KIND/NAME@VERSION")]
ProjectOption = Annotated[str | None, typer.Option(help="the project of a RECORD named NAME@VERSION")]
KindOption = Annotated[str | None, typer.Option(help="the kind (or collection) of a RECORD named NAME@VERSION")]


def _label(node: dict[str, Any]) -> str:
    marks = []
    if node["quarantined"]:
        marks.append("[red]QUARANTINED[/red]")
    if node["stale"]:
        marks.append("[yellow]STALE[/yellow]")
    if node["status"] not in ("registered",):
        marks.append(f"[cyan]{node['status']}[/cyan]")
    return (
        f"[bold]{node['kind']}[/bold] {escape(node['name'])} v{escape(node['version'])} {' '.join(marks)}".rstrip()
        + (f"  [dim]{node['id']}[/dim]")
    )


def render_tree(graph: dict[str, Any]) -> Tree:
    """The upstream chain as a tree from the root; an ancestor reached twice is expanded once."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    parents: dict[str, list[tuple[str, str]]] = {}
    for edge in graph["edges"]:
        parents.setdefault(edge["child"], []).append((edge["role"], edge["parent"]))
    shown: set[str] = set()

    def grow(branch: Tree, node_id: str) -> None:
        for role, parent in sorted(parents.get(node_id, []), key=lambda p: (p[0], nodes[p[1]]["name"])):
            child = branch.add(f"[dim]{role}:[/dim] {_label(nodes[parent])}")
            if parent in shown:
                child.label = f"{child.label} [dim](see above)[/dim]"
                continue
            shown.add(parent)
            grow(child, parent)

    root = graph["root"]
    tree = Tree(_label(nodes[root]))
    shown.add(root)
    grow(tree, root)
    return tree


def trace(
    record: RecordArg,
    direction: Annotated[str, typer.Option(help="upstream | downstream")] = "upstream",
    fmt: Annotated[str, typer.Option("--format", help="tree | json | dot | mermaid")] = "tree",
    project: ProjectOption = None,
    kind: KindOption = None,
) -> None:
    """Print a record's lineage: by default the upstream chain back to its criteria, as a tree."""
    if direction not in ("upstream", "downstream") or fmt not in ("tree", "json", "dot", "mermaid"):
        raise typer.BadParameter("--direction upstream|downstream, --format tree|json|dot|mermaid")
    with RegistryClient() as client:
        record_id = resolve(client, record, project=project, kind=kind)["id"]
        result = client.lineage(record_id, direction, "json" if fmt in ("tree", "json") else fmt)
    if fmt == "tree":
        if direction == "downstream":
            for node in result["nodes"]:
                out.print(_label(node))
        else:
            out.print(render_tree(result))
    elif fmt == "json":
        out.print_json(data=result)
    else:
        print(result, end="")


deployments_app = typer.Typer(help="Deployment decisions.", no_args_is_help=True)


DeploymentArg = Annotated[str, typer.Argument(metavar="NAME[@VERSION]", help="the deployment")]
VersionArg = Annotated[str | None, typer.Argument(metavar="[VERSION]", help="its version (default: latest)")]


def _decide(project: str, name: str, version: str | None, decision: str, note: str) -> tuple[str, dict[str, Any]]:
    name, version = name_and_version(name, version)
    with RegistryClient() as client:
        # `latest` is pinned first, so that the line printed names the version decided on
        deployment = client.get(project, "deployments", name, version)
        event = client.decide(project, name, deployment["version"], decision, note)
    return label(deployment), event


@deployments_app.command("approve")
def approve(project: str, name: DeploymentArg, version: VersionArg = None, note: str = "") -> None:
    """Approve a deployment (needs the approver role and an approver who did not train it)."""
    named, event = _decide(project, name, version, "approve", note)
    out.print(f"approved {escape(named)}: evidence {escape(str(event['data'].get('evidence')))}", soft_wrap=True)


@deployments_app.command("reject")
def reject(project: str, name: DeploymentArg, version: VersionArg = None, note: str = "") -> None:
    """Reject a deployment."""
    named, _ = _decide(project, name, version, "reject", note)
    out.print(f"rejected {escape(named)}")


def revoke(
    record: RecordArg,
    reason: Annotated[str, typer.Option(help="why the record is bad")],
    project: ProjectOption = None,
    kind: KindOption = None,
) -> None:
    """Revoke a record: everything downstream becomes quarantined (nothing is deleted)."""
    with RegistryClient() as client:
        target = resolve(client, record, project=project, kind=kind)
        result = client.revoke(target["id"], reason)
    out.print(
        f"revoked {target['kind']} {escape(label(target))} ({target['id']}); "
        f"{result['downstream_quarantined']} downstream records are now quarantined",
        soft_wrap=True,
    )

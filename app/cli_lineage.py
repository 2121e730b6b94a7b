"""CLI for the model side: trace a record, approve or reject a deployment, revoke a record."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.tree import Tree

from app.cli_data import fail
from app.client import ApiError, RegistryClient

out = Console()


def _label(node: dict[str, Any]) -> str:
    marks = []
    if node["quarantined"]:
        marks.append("[red]QUARANTINED[/red]")
    if node["stale"]:
        marks.append("[yellow]STALE[/yellow]")
    if node["status"] not in ("registered",):
        marks.append(f"[cyan]{node['status']}[/cyan]")
    return f"[bold]{node['kind']}[/bold] {node['name']} v{node['version']} {' '.join(marks)}".rstrip() + (
        f"  [dim]{node['id']}[/dim]"
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
    record_id: str,
    direction: Annotated[str, typer.Option(help="upstream | downstream")] = "upstream",
    fmt: Annotated[str, typer.Option("--format", help="tree | json | dot | mermaid")] = "tree",
) -> None:
    """Print a record's lineage: by default the upstream chain back to its criteria, as a tree."""
    with RegistryClient() as client:
        try:
            result = client.lineage(record_id, direction, "json" if fmt in ("tree", "json") else fmt)
        except ApiError as exc:
            fail(exc)
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


@deployments_app.command("approve")
def approve(project: str, name: str, version: str, note: str = "") -> None:
    """Approve a deployment (needs the approver role and an approver who did not train it)."""
    with RegistryClient() as client:
        try:
            event = client.decide(project, name, version, "approve", note)
        except ApiError as exc:
            fail(exc)
    out.print(f"approved {name} v{version}: evidence {event['data'].get('evidence')}")


@deployments_app.command("reject")
def reject(project: str, name: str, version: str, note: str = "") -> None:
    with RegistryClient() as client:
        try:
            client.decide(project, name, version, "reject", note)
        except ApiError as exc:
            fail(exc)
    out.print(f"rejected {name} v{version}")


def revoke(record_id: str, reason: Annotated[str, typer.Option(help="why the record is bad")]) -> None:
    """Revoke a record: everything downstream becomes quarantined (nothing is deleted)."""
    with RegistryClient() as client:
        try:
            result = client.revoke(record_id, reason)
        except ApiError as exc:
            fail(exc)
    out.print(f"revoked {record_id}; {result['downstream_quarantined']} downstream records are now quarantined")

"""Every kind declares what the rest of the registry needs to know about it, and no module outside the
kinds keeps its own list of kinds: adding a kind is one module and one line in app.kinds.registry."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from app.kinds.base import KindDefinition, RequiredFigure
from app.kinds.registry import KINDS, display_order, kinds_where, label_of, rank_of

ROOT = Path(__file__).resolve().parents[2]
DECLARED: dict[str, type | tuple[type, ...]] = {
    "rank": int,
    "label": str,
    "waivable": bool,
    "package_fields": tuple,
    "traces_to_criteria": bool,
    "is_model": bool,
    "trained": bool,
    "built_by_server": bool,
}
# calls that declare which kinds may fill one parent or input role: a signature, not a list about kinds
ROLE_DECLARATIONS = frozenset({"ParentRole", "InputRule"})


def _declares(cls: type, attribute: str) -> bool:
    """Whether `attribute` is set by the kind's own class or a class between it and KindDefinition."""
    return any(attribute in vars(c) for c in cls.__mro__ if c not in (KindDefinition, object))


@pytest.mark.parametrize("name", sorted(KINDS))
@pytest.mark.parametrize("attribute", sorted(DECLARED))
def test_every_kind_declares_each_attribute_itself(name: str, attribute: str) -> None:
    kind = KINDS[name]
    assert _declares(type(kind), attribute), f"{type(kind).__name__} does not declare {attribute}"
    assert isinstance(getattr(kind, attribute), DECLARED[attribute])


def test_ranks_and_labels_tell_kinds_apart() -> None:
    ranks = [kind.rank for kind in KINDS.values()]
    labels = [kind.label for kind in KINDS.values()]
    assert len(set(ranks)) == len(ranks)
    assert len(set(labels)) == len(labels) and all(label.strip() for label in labels)
    assert list(display_order()) == sorted(KINDS, key=lambda name: KINDS[name].rank)
    assert set(display_order()) == set(KINDS)


def test_package_requirements_are_paths_into_the_envelope() -> None:
    for kind in KINDS.values():
        paths = [*kind.package_fields, *(p for figure in kind.package_figures for p in figure.paths)]
        assert all(isinstance(figure, RequiredFigure) for figure in kind.package_figures)
        assert all(re.fullmatch(r"(spec|derived)(\.\w+)+", path) for path in paths), kind.name


def test_every_parent_role_names_registered_kinds() -> None:
    for kind in KINDS.values():
        for role in kind.parent_roles:
            assert role.kinds, f"{kind.name}.{role.role} takes no kind"
            assert set(role.kinds) <= set(KINDS), f"{kind.name}.{role.role}: {role.kinds}"


def test_parents_rank_upstream_of_their_children() -> None:
    """Display order is upstream first. A waiver's `covers` is the exception: a waiver sits between the
    records it covers and the one it allowed, which takes it as a parent."""
    for kind in KINDS.values():
        for role in kind.parent_roles:
            if role.kinds_flagged is not None:
                continue
            for parent in role.kinds:
                assert rank_of(parent) <= kind.rank, f"{kind.name}.{role.role}: {parent} ranks after it"


def test_a_waiver_covers_every_waivable_kind_and_nothing_else() -> None:
    [covers] = KINDS["waiver"].parent_roles
    assert covers.role == "covers"
    assert covers.kinds == kinds_where(waivable=True)
    assert "waiver" not in covers.kinds and "handoff_package" not in covers.kinds
    assert {"criteria", "annotation_batch", "preference_dataset", "policy_checkpoint"} <= set(covers.kinds)


def test_an_evaluation_targets_every_model_kind() -> None:
    """Package gathering looks for evaluations of every model kind: the role must accept each."""
    [target] = [role for role in KINDS["evaluation"].parent_roles if role.role == "target"]
    assert set(target.kinds) == set(kinds_where(is_model=True))


def test_kind_questions() -> None:
    assert kinds_where(is_model=True) == ("base_model", "reward_checkpoint", "policy_checkpoint")
    assert kinds_where(trained=True) == ("reward_checkpoint", "policy_checkpoint")
    assert set(kinds_where(trained=True)) <= set(kinds_where(is_model=True))
    assert kinds_where(built_by_server=True) == ("handoff_package",)
    assert kinds_where(is_model=True, trained=False) == ("base_model",)
    with pytest.raises(AttributeError):
        kinds_where(no_such_flag=True)


def test_display_order_upstream_first_and_unknown_kinds_last() -> None:
    order = display_order()
    assert order[0] == "policy" and order[-1] == "handoff_package"
    assert order.index("annotation_batch") < order.index("waiver") < order.index("preference_dataset")
    assert rank_of("from_an_archive") > max(rank_of(name) for name in KINDS)
    assert label_of("annotation_batch") == "annotation batch"
    assert label_of("from_an_archive") == "from an archive"


def _kind_names_in(node: ast.AST) -> list[str]:
    elements: list[ast.expr] = []
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        elements = node.elts
    elif isinstance(node, ast.Dict):
        keys = [key for key in node.keys if key is not None]
        # a table keyed by kind (`{"criteria": ..., "prompt_set": ...}`); a body whose keys include other
        # fields names roles, not kinds
        if len(keys) != len(node.keys) or not all(isinstance(k, ast.Constant) and k.value in KINDS for k in keys):
            return []
        elements = keys
    return [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value in KINDS]


def _role_declaration_arguments(tree: ast.AST) -> set[int]:
    exempt: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if called in ROLE_DECLARATIONS:
                exempt |= {id(arg) for arg in [*node.args, *(k.value for k in node.keywords)]}
    return exempt


def kind_lists_in_python(source: str) -> list[tuple[int, list[str]]]:
    """(line, names) of every literal in `source` that lists two or more kind names."""
    tree = ast.parse(source)
    exempt = _role_declaration_arguments(tree)
    found = []
    for node in ast.walk(tree):
        names = _kind_names_in(node)
        if len(names) >= 2 and id(node) not in exempt:
            found.append((getattr(node, "lineno", 0), names))
    return found


QUOTED = re.compile(r"""["']([a-z_]+)["']""")
BRACKETED = re.compile(r"[\[(][^\[\]()]*[\])]")


def kind_lists_in_template(source: str) -> list[tuple[int, list[str]]]:
    """(line, names) of every bracketed group in a Jinja template that quotes two or more kind names."""
    found = []
    for match in BRACKETED.finditer(source):
        names = [name for name in QUOTED.findall(match.group()) if name in KINDS]
        if len(names) >= 2:
            found.append((source.count("\n", 0, match.start()) + 1, names))
    return found


def test_the_scan_finds_kind_lists_and_lets_role_declarations_be() -> None:
    listed = 'MODELS = ("base_model", "reward_checkpoint")\nif kind in ["criteria", "waiver"]:\n    pass\n'
    assert [line for line, _ in kind_lists_in_python(listed)] == [1, 2]
    table = 'REQUIRED = {"criteria": ("spec.x",), "prompt_set": ()}\n'
    assert kind_lists_in_python(table) == [(1, ["criteria", "prompt_set"])]
    allowed = (
        'body = {"name": n, "criteria": ref(c), "prompt_set": ref(p)}\n'
        'ROLE = InputRule("base_model", ("base_model", "policy_checkpoint"))\n'
        'if kind == "criteria":\n    pass\n'
    )
    assert kind_lists_in_python(allowed) == []
    assert kind_lists_in_template('{% if r.kind in ("base_model", "policy_checkpoint") %}') == [
        (1, ["base_model", "policy_checkpoint"])
    ]
    assert kind_lists_in_template('{% if r.kind == "criteria" %}<p>{{ f("prompt_set") }}</p>') == []


def test_no_module_keeps_its_own_list_of_kinds() -> None:
    """Ask app.kinds.registry instead (`kinds_where(trained=True)`, `display_order()`, `KINDS[k].label`)."""
    found = []
    for folder in ("app", "workers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, names in kind_lists_in_python(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(ROOT)}:{line}: {names}")
    for path in sorted((ROOT / "app" / "templates").rglob("*")):
        if path.suffix in (".html", ".j2"):
            for line, names in kind_lists_in_template(path.read_text(encoding="utf-8")):
                found.append(f"{path.relative_to(ROOT)}:{line}: {names}")
    assert found == []

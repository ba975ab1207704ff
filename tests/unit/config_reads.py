"""What the drill's code reads from the target, found from its syntax (for test_config_needs.py).

Entry points are the step functions each feature binds (matched as pytest-bdd matches them: the
step's keyword and text, the phase's module first, then steps/conftest.py), the readiness steps
and the drill run's own fixtures. From there every call is followed into the analysed modules:
DrillRun / ReadinessRun methods and properties (`drill_run.terraform()`, `self.cfg`), functions
and constructors handed the target or a part of it (`azure_auth(target)`, `DrillLock(target)`,
`stack_terraform(self.target)`), with their parameters bound to what was passed, nested functions
and lambdas with their enclosing bindings. An attribute chain on the target is a read:
`drill_run.target.azure.app_gateway.http_port`, or through a local alias (`k8s =
drill_run.target.kubernetes; k8s.namespace`). Dynamic reads (`getattr(target, name)`) are not
seen, so they cannot stand in for a real one. Subscripts of Terraform's outputs (`outputs["x"]`,
`out["x"]`) are collected apart.
"""
from __future__ import annotations

import ast
import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pytest_bdd import parsers

from drill.config import Target

REPO = Path(__file__).resolve().parents[2]
# Every module that may be handed the target: the root conftest, the steps and the drivers.
MODULES = ["conftest.py", *sorted(str(p.relative_to(REPO)) for d in ("steps", "drivers") for p in (REPO / d).rglob("*.py"))]
# Step modules steps/conftest.py imports every definition of (shared by every system).
SHARED_STEP_MODULES = ("steps/aws_web_tier.py",)
RUN_CLASSES = {"DrillRun", "ReadinessRun"}
# How entry points and their helpers name the objects they get.
RUN_NAMES = {"drill_run": "DrillRun", "run": "DrillRun", "readiness_run": "ReadinessRun"}
OUTPUT_NAMES = {"outputs", "out"}
Value = tuple[str, Any]  # ("path", tuple of attributes from the target) | ("run", class name)


@dataclass
class Func:
    module: str
    cls: str | None
    node: ast.FunctionDef | ast.AsyncFunctionDef

    @property
    def name(self) -> str:
        return self.node.name

    def is_property(self) -> bool:
        return any(isinstance(d, ast.Name) and d.id == "property" for d in self.node.decorator_list)


@dataclass
class Reads:
    paths: set[tuple[str, ...]] = field(default_factory=set)
    outputs: set[str] = field(default_factory=set)

    def update(self, other: Reads) -> None:
        self.paths |= other.paths
        self.outputs |= other.outputs


class Code:
    """The analysed modules: their functions, classes' methods and step definitions."""

    def __init__(self, repo: Path = REPO, modules: list[str] = MODULES) -> None:
        self.functions: dict[str, list[Func]] = {}
        self.methods: dict[tuple[str, str], Func] = {}
        self.classes: set[str] = set()
        self.steps: dict[str, list[tuple[str, str, Any, Func]]] = {}  # module -> (keyword, text, matcher, func)
        for rel in modules:
            tree = ast.parse((repo / rel).read_text(encoding="utf-8"), rel)
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    f = Func(rel, None, node)
                    self.functions.setdefault(node.name, []).append(f)
                    self._step(rel, f)
                elif isinstance(node, ast.ClassDef):
                    self.classes.add(node.name)
                    for item in node.body:
                        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                            self.methods[(node.name, item.name)] = Func(rel, node.name, item)

    def _step(self, module: str, f: Func) -> None:
        for d in f.node.decorator_list:
            if isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id in ("given", "when", "then") and d.args:
                arg = d.args[0]
                if isinstance(arg, ast.Constant):
                    text, matcher = str(arg.value), None
                elif isinstance(arg, ast.Call) and isinstance(arg.args[0], ast.Constant):  # parsers.parse("...")
                    text = str(arg.args[0].value)
                    matcher = parsers.parse(text)
                else:
                    continue
                self.steps.setdefault(module, []).append((d.func.id, text, matcher, f))

    def function(self, name: str, module: str) -> Func | None:
        """A module-level function by name: the calling module's own first, else the only one of that name."""
        found = self.functions.get(name, [])
        own = [f for f in found if f.module == module]
        return own[0] if own else (found[0] if len(found) == 1 else None)

    def feature_steps(self, feature: Path, module: str) -> list[Func]:
        """The step functions a feature binds, as pytest-bdd finds them (its module, then steps/conftest.py)."""
        out: list[Func] = []
        keyword = None
        in_scenario = False  # a feature's description may start lines with "When ..." too
        for line in feature.read_text(encoding="utf-8").splitlines():
            if re.match(r"\s*(Scenario|Scenario Outline|Background):", line):
                in_scenario = True
                continue
            m = re.match(r"\s*(Given|When|Then|And|But)\s+(.*\S)\s*$", line)
            if not m or not in_scenario:
                continue
            if m.group(1) not in ("And", "But"):
                keyword = m.group(1).lower()
            text = m.group(2)
            for mod in (module, "steps/conftest.py", *SHARED_STEP_MODULES):
                hit = next((f for kw, t, matcher, f in self.steps.get(mod, [])
                            if kw == keyword and (matcher.is_matching(text) if matcher else t == text)), None)
                if hit is not None:
                    out.append(hit)
                    break
            else:
                raise AssertionError(f"{feature.name}: no step definition for {keyword} {text!r}")
        return out


class Analyzer:
    def __init__(self, code: Code) -> None:
        self.code = code
        self._done: dict[tuple[int, tuple], tuple[Reads, Value | None]] = {}
        self._active: set[tuple[int, tuple]] = set()

    def reads(self, funcs: list[Func], bindings: dict[str, Value] | None = None) -> Reads:
        total = Reads()
        for f in funcs:
            b = dict(bindings or {})
            for a in f.node.args.args + f.node.args.kwonlyargs:
                if a.arg in RUN_NAMES:
                    b.setdefault(a.arg, ("run", RUN_NAMES[a.arg]))
                elif a.arg == "target":
                    b.setdefault(a.arg, ("path", ()))
            total.update(self.analyse(f, b)[0])
        return total

    def analyse(self, f: Func, bindings: dict[str, Value]) -> tuple[Reads, Value | None]:
        if f.cls is not None and f.cls in RUN_CLASSES:
            bindings = {**bindings, "self": ("run", f.cls)}
        key = (id(f.node), tuple(sorted(bindings.items())))
        if key in self._done:
            return self._done[key]
        if key in self._active:  # recursion: what is known so far
            return Reads(), None
        self._active.add(key)
        walker = _Walker(self, f, bindings)
        walker.run()
        self._active.discard(key)
        self._done[key] = (walker.reads, walker.returned)
        return self._done[key]


class _Walker(ast.NodeVisitor):
    """One function: aliases in source order, reads at every attribute chain, calls followed."""

    def __init__(self, an: Analyzer, f: Func, bindings: dict[str, Value]) -> None:
        self.an, self.f, self.env = an, f, dict(bindings)
        self.reads = Reads()
        self.returned: Value | None = None

    def run(self) -> None:
        for stmt in self.f.node.body:
            self.visit(stmt)

    # -- statements ------------------------------------------------------------------------------
    def visit_Assign(self, node: ast.Assign) -> None:
        value = self.eval(node.value)
        for t in node.targets:
            if isinstance(t, ast.Name):
                if value is not None:
                    self.env[t.id] = value
                else:
                    self.env.pop(t.id, None)
            else:
                self.eval(t)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit_Assign(ast.Assign(targets=[node.target], value=node.value))

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None:
            value = self.eval(node.value)
            self.returned = value if value is not None else self.returned

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:  # closures see the enclosing bindings
        inner = Func(self.f.module, self.f.cls, node)
        self.reads.update(self.an.analyse(inner, {k: v for k, v in self.env.items()
                                                  if k not in {a.arg for a in node.args.args}})[0])

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def generic_visit(self, node: ast.AST) -> None:
        if isinstance(node, ast.expr):
            self.eval(node)
        else:
            super().generic_visit(node)

    # -- expressions -----------------------------------------------------------------------------
    def eval(self, node: ast.AST | None) -> Value | None:
        if node is None:
            return None
        if isinstance(node, ast.Name):
            return self.env.get(node.id)
        if isinstance(node, ast.Attribute):
            return self.attribute(self.eval(node.value), node.attr)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            base = node.value
            if isinstance(base, ast.Name) and base.id in OUTPUT_NAMES and isinstance(node.slice, ast.Constant):
                self.reads.outputs.add(str(node.slice.value))
            self.eval(base)
            self.eval(node.slice)
            return None
        if isinstance(node, ast.Lambda):
            self.eval(node.body)
            return None
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.eval(child)
            elif isinstance(child, ast.comprehension):
                self.eval(child.iter)
                for cond in child.ifs:
                    self.eval(cond)
            elif isinstance(child, (ast.keyword, ast.arg)):
                self.eval(getattr(child, "value", None))
        return None

    def attribute(self, base: Value | None, attr: str) -> Value | None:
        if base is None:
            return None
        kind, what = base
        if kind == "run":
            if attr == "target":
                return ("path", ())
            prop = self.an.code.methods.get((what, attr))
            if prop is not None and prop.is_property():
                reads, returned = self.an.analyse(prop, {"self": base})
                self.reads.update(reads)
                return returned
            return None
        if kind == "path" and is_field(what + (attr,)):
            path = what + (attr,)
            self.reads.paths.add(path)
            return ("path", path)
        return None

    def call(self, node: ast.Call) -> Value | None:
        args = [self.eval(a) for a in node.args]
        kwargs = {k.arg: self.eval(k.value) for k in node.keywords if k.arg}
        func = node.func
        callee: Func | None = None
        bound: dict[str, Value] = {}
        if isinstance(func, ast.Attribute):
            owner = self.eval(func.value)
            if owner is not None and owner[0] == "run":
                if func.attr == "_section" and node.args and isinstance(node.args[0], ast.Constant):
                    path = (str(node.args[0].value),)
                    self.reads.paths.add(path)
                    return ("path", path)
                callee = self.an.code.methods.get((owner[1], func.attr))
                bound["self"] = owner
            elif owner is None:
                self.eval(func.value)
        elif isinstance(func, ast.Name):
            if func.id == "load_target":
                return ("path", ())
            if func.id == "getattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                return self.attribute(args[0], str(node.args[1].value))
            if func.id in self.an.code.classes:
                callee = self.an.code.methods.get((func.id, "__init__"))
                bound["self"] = ("run", func.id) if func.id in RUN_CLASSES else ("obj", func.id)
                if callee is None:
                    return ("run", func.id) if func.id in RUN_CLASSES else None
            else:
                callee = self.an.code.function(func.id, self.f.module)
        if callee is None:
            return None
        params = [a.arg for a in callee.node.args.args]
        if bound.get("self") is not None and params and params[0] == "self":
            params = params[1:]
        for p, v in zip(params, args, strict=False):  # params may have defaults that args do not fill
            if v is not None:
                bound[p] = v
        for k, v in kwargs.items():
            if v is not None:
                bound[k] = v
        if "self" in bound and bound["self"][0] != "run":
            bound.pop("self")
        reads, returned = self.an.analyse(callee, bound)
        self.reads.update(reads)
        if isinstance(func, ast.Name) and func.id in RUN_CLASSES:
            return ("run", func.id)  # a new DrillRun / ReadinessRun
        return returned


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: Any = Target
    for attr in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or attr not in model.model_fields:
            return None
        model = _inner(model.model_fields[attr].annotation)
    return model


def is_field(path: tuple[str, ...]) -> bool:
    parent = _model_at(path[:-1])
    return parent is not None and path[-1] in parent.model_fields


def nullable(path: tuple[str, ...]) -> bool:
    """A field that may be absent from a valid target (Optional, or defaulting to None)."""
    parent = _model_at(path[:-1])
    if parent is None:
        return False
    info = parent.model_fields[path[-1]]
    return info.default is None or type(None) in typing.get_args(info.annotation)


def longest_nullable_prefix(path: tuple[str, ...]) -> tuple[str, ...] | None:
    for n in range(len(path), 0, -1):
        if nullable(path[:n]):
            return path[:n]
    return None


def _inner(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return args[0]
    return annotation


def dotted(path: tuple[str, ...]) -> str:
    return ".".join(path)


SYSTEMS = ("cloudfront", "goupang")


def iter_parts(code: Code, system: str = "cloudfront") -> Iterator[tuple[str, list[Func]]]:
    """Each part of a system's contract and its entry points: its phases' features as their step modules
    bind them (steps/<system>/test_phaseN.py), its readiness steps, and the drill run every system shares."""
    for n in (1, 2, 3):
        module = f"steps/{system}/test_phase{n}.py"
        feature = next((REPO / "features" / system).glob(f"phase{n}_*.feature"))
        yield f"phase{n}", code.feature_steps(feature, module)
    # A system's readiness module binds its own steps and star-imports the shared ones.
    readiness = [f for m in (f"steps/{system}/test_readiness.py", "steps/readiness_steps.py") for _, _, _, f in code.steps.get(m, [])]
    yield "readiness", [*readiness, *code.functions["readiness_run"]]
    # The run itself, whatever its phases: target and lab, guard, stack check, lock, end-of-run unwind.
    yield "run", [*code.functions["pytest_collection_finish"], *code.functions["target"], *code.functions["drill_run"]]

"""Translate Django's sync ``BaseCacheTests`` into the same tests on the async API.

Django ships no async twin of its generic cache tests. A hand-written copy
would drift from Django's and would test what we *think* the contract is;
translating the downloaded source mechanically holds both APIs to exactly the
statements Django makes, release after release.

The rules, applied to the class's syntax tree:

1. Test methods (``test*``), and helpers that end up awaiting something, become
   ``async def``; Django's test cases run ``async def test_*`` natively.
   ``setUp``/``tearDown`` and friends stay sync: unittest calls them
   synchronously, so fixture code keeps using the sync API.
2. ``c.X(...)`` on a cache ``c`` (the ``cache`` proxy, ``caches[...]``, or a
   local bound to one) becomes ``await c.aX(...)`` when ``BaseCache`` has a
   coroutine ``aX``; ``getattr(c, name)(...)`` becomes
   ``await getattr(c, "a" + name)(...)``.
3. The same rule for the ORM: a call on a chain rooted at a model class
   (``Poll.objects.count()``) or at a local bound to one becomes its QuerySet
   twin (``await Poll.objects.acount()``), because a sync ORM call raises
   ``SynchronousOnlyOperation`` in async code.
4. ``time.sleep(x)`` becomes ``await asyncio.sleep(x)``; ``self.helper(...)``
   becomes ``await self.helper(...)`` when the helper became async; a
   decorator with a sync wrapper (``@retry()``) is swapped for its async twin.

Nested functions and lambdas are left alone: they are callbacks that Django or
the backend call synchronously (a key function, a ``get_or_set`` default, a view).
``key in cache`` has no async form and stays as it is.
"""

from __future__ import annotations

import ast
import asyncio
import copy
import functools
import inspect
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from asgiref.sync import iscoroutinefunction

#: Hooks unittest calls synchronously: they keep the sync API.
LIFECYCLE = frozenset({"setUp", "tearDown", "setUpClass", "tearDownClass", "setUpTestData"})

_NOT_METHODS = frozenset({"property", "staticmethod", "classmethod"})

AsyncTest = Callable[..., Awaitable[Any]]


def async_twins(cls: type) -> frozenset[str]:
    """The public names ``X`` of ``cls`` that have a coroutine twin ``aX`` (``get``: ``aget``)."""
    return frozenset(
        name
        for name in dir(cls)
        if not name.startswith("_")
        and callable(getattr(cls, name, None))
        and inspect.iscoroutinefunction(getattr(cls, "a" + name, None))
    )


def async_retry(retries: int = 3, delay: float = 1) -> Callable[[AsyncTest], AsyncTest]:
    """Async twin of the ``retry()`` decorator of Django's cache tests (Django 5.0+).

    Its sync wrapper would return the test's coroutine unawaited, so the test
    would neither run nor be detected as async; this one re-runs a
    timing-sensitive test on ``AssertionError`` and sleeps without blocking
    the loop.
    """

    def decorator(test: AsyncTest) -> AsyncTest:
        @functools.wraps(test)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(1, retries + 1):
                try:
                    return await test(*args, **kwargs)
                except AssertionError:
                    if attempt >= retries:
                        raise
                    await asyncio.sleep(delay)
            return None

        return wrapper

    return decorator


@dataclass(frozen=True)
class Rules:
    """What the translation recognises, computed from Django itself (``for_django``)."""

    cache_methods: frozenset[str]
    orm_methods: frozenset[str]
    models: frozenset[str]
    cache_names: frozenset[str] = frozenset({"cache"})
    cache_registries: frozenset[str] = frozenset({"caches"})
    decorators: Mapping[str, str] = field(default_factory=lambda: {"retry": "async_retry"})

    @classmethod
    def for_django(cls, module: ModuleType) -> Rules:
        """Rules for a Django test module: BaseCache's and QuerySet's twins, its models."""
        from django.core.cache.backends.base import BaseCache
        from django.db.models import Model, QuerySet

        models = frozenset(
            name
            for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, Model)
        )
        return cls(async_twins(BaseCache), async_twins(QuerySet), models)


#: What the translated code needs besides the test module's own globals.
EXTRA_GLOBALS: Mapping[str, Any] = {"asyncio": asyncio, "async_retry": async_retry}


def build_async_class(
    module: ModuleType, class_name: str, generated_dir: Path, only: Collection[str] | None = None
) -> type:
    """Translate ``module.<class_name>`` (only the methods ``only``, when given)
    and return the async mixin ``Async<class_name>``.

    The translated source is written to ``generated_dir`` and compiled from
    there, so a traceback shows the async code that actually ran.
    """
    new_name = "Async" + class_name
    rules = Rules.for_django(module)
    source = Path(inspect.getfile(module)).read_text(encoding="utf-8")
    translated = translate_class(source, class_name, new_name, rules, only)
    generated = generated_dir / f"async_{class_name}.py"
    text = (
        f"# Generated from {module.__name__}.{class_name} by tests/contract/asyncify.py.\n"
        + ast.unparse(ast.fix_missing_locations(ast.Module(body=[translated], type_ignores=[])))
        + "\n"
    )
    generated.write_text(text, encoding="utf-8")
    namespace = dict(vars(module))
    for name, value in EXTRA_GLOBALS.items():
        if namespace.setdefault(name, value) is not value:
            raise RuntimeError(f"{module.__name__} defines {name!r}: the translation needs it")
    exec(compile(text, str(generated), "exec"), namespace)
    new_class: type = namespace[new_name]
    not_async = [
        name
        for name in dir(new_class)
        if name.startswith("test") and not iscoroutinefunction(getattr(new_class, name))
    ]
    if not_async:
        # A test that is not a coroutine function would "pass" without running.
        raise RuntimeError(f"translation left sync tests in {new_name}: {not_async}")
    return new_class


def translate_class(
    source: str,
    class_name: str,
    new_name: str,
    rules: Rules,
    only: Collection[str] | None = None,
) -> ast.ClassDef:
    """The ``ast.ClassDef`` of ``class_name`` in ``source``, translated and renamed.

    The result is a plain mixin: bases and class decorators are dropped, since
    the runner supplies the ``TestCase`` base and the settings, as Django's
    concrete test classes do. With ``only``, just those methods are kept.
    """
    tree = ast.parse(source)
    found = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    if not found:
        raise LookupError(f"no class {class_name} at the top level of the test module")
    original = found[0]
    members = [
        node
        for node in original.body
        if only is None or (isinstance(node, ast.FunctionDef) and node.name in only)
    ]
    missing = set(only or ()) - {getattr(node, "name", None) for node in members}
    if missing:
        raise LookupError(f"{class_name} has no method {sorted(missing)}")
    candidates = {
        node.name: node
        for node in members
        if isinstance(node, ast.FunctionDef)
        and node.name not in LIFECYCLE
        and not any(_decorator_name(d) in _NOT_METHODS for d in node.decorator_list)
    }
    # Which methods become async: the tests, then every helper that awaits
    # something, until no more are added (a helper awaiting an async helper).
    async_methods = {name for name in candidates if name.startswith("test")}
    while True:
        awaiting = {
            name
            for name, node in candidates.items()
            if _rewrite(copy.deepcopy(node), rules, async_methods)[1]
        }
        if awaiting <= async_methods:
            break
        async_methods |= awaiting
    body: list[ast.stmt] = []
    for node in members:
        if isinstance(node, ast.FunctionDef) and node.name in async_methods:
            rewritten, _ = _rewrite(node, rules, async_methods)
            body.append(_to_async_def(rewritten, rules))
        else:
            body.append(node)
    translated = copy.copy(original)  # keeps any field a newer Python adds (type_params)
    translated.name = new_name
    translated.bases, translated.keywords, translated.decorator_list = [], [], []
    translated.body = body or [ast.Pass()]
    return translated


def _rewrite(
    function: ast.FunctionDef, rules: Rules, async_methods: set[str]
) -> tuple[ast.FunctionDef, int]:
    """The function with its calls translated, and how many were."""
    cache_locals, orm_locals = _bound_locals(function, rules)
    rewriter = _CallRewriter(rules, async_methods, cache_locals, orm_locals)
    function.body = [rewriter.visit(statement) for statement in function.body]
    return function, rewriter.rewrites


def _to_async_def(function: ast.FunctionDef, rules: Rules) -> ast.AsyncFunctionDef:
    fields = {name: getattr(function, name) for name in function._fields if hasattr(function, name)}
    fields["decorator_list"] = [_async_decorator(d, rules) for d in function.decorator_list]
    return ast.copy_location(ast.AsyncFunctionDef(**fields), function)


def _async_decorator(decorator: ast.expr, rules: Rules) -> ast.expr:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name) and target.id in rules.decorators:
        target.id = rules.decorators[target.id]
    return decorator


def _decorator_name(decorator: ast.expr) -> str | None:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return target.id if isinstance(target, ast.Name) else None


def _root_name(node: ast.expr) -> str | None:
    """``Poll`` for ``Poll.objects.all()``: the name a chain of calls and attributes starts at."""
    while True:
        if isinstance(node, ast.Attribute | ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _walk_own_body(function: ast.FunctionDef) -> list[ast.AST]:
    """The nodes of ``function``'s body, without entering nested functions or lambdas."""
    found: list[ast.AST] = []
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        found.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))
    return found


def _bound_locals(function: ast.FunctionDef, rules: Rules) -> tuple[set[str], set[str]]:
    """Locals assigned a cache (``c = caches["x"]``) or an ORM chain (``qs = Poll.objects...``)."""
    caches: set[str] = set()
    orm: set[str] = set()
    assignments = [
        (node.targets[0].id, node.value)
        for node in _walk_own_body(function)
        if isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    ]
    for _ in range(2):  # a second pass catches a local bound from a later-listed local
        for name, value in assignments:
            if _is_cache(value, rules, caches):
                caches.add(name)
            elif _root_name(value) in rules.models | orm:
                orm.add(name)
    return caches, orm


def _is_cache(node: ast.expr, rules: Rules, cache_locals: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in rules.cache_names or node.id in cache_locals
    return isinstance(node, ast.Subscript) and (
        isinstance(node.value, ast.Name) and node.value.id in rules.cache_registries
    )


class _CallRewriter(ast.NodeTransformer):
    """Rewrites the calls of one method body (rules 2 to 4 of the module docstring)."""

    def __init__(
        self, rules: Rules, async_methods: set[str], cache_locals: set[str], orm_locals: set[str]
    ) -> None:
        self.rules = rules
        self.async_methods = async_methods
        self.cache_locals = cache_locals
        self.orm_roots = rules.models | orm_locals
        self.rewrites = 0

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return node  # a nested callback: called synchronously, left alone

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)  # the arguments first: they may hold calls too
        replacement = self._translate(node)
        if replacement is None:
            return node
        self.rewrites += 1
        return ast.copy_location(ast.Await(value=replacement), node)

    def _translate(self, call: ast.Call) -> ast.Call | None:
        func = call.func
        if isinstance(func, ast.Attribute):
            owner, name = func.value, func.attr
            if name in self.rules.cache_methods and _is_cache(owner, self.rules, self.cache_locals):
                return _with_func(call, ast.Attribute(value=owner, attr="a" + name, ctx=ast.Load()))
            if name in self.rules.orm_methods and _root_name(owner) in self.orm_roots:
                return _with_func(call, ast.Attribute(value=owner, attr="a" + name, ctx=ast.Load()))
            if _is_name(owner, "time") and name == "sleep":
                sleep = ast.Attribute(value=ast.Name("asyncio", ast.Load()), attr="sleep")
                return _with_func(call, sleep)
            if _is_name(owner, "self") and name in self.async_methods:
                return call
        elif (
            isinstance(func, ast.Call)
            and _is_name(func.func, "getattr")
            and len(func.args) == 2
            and not func.keywords
            and _is_cache(func.args[0], self.rules, self.cache_locals)
        ):
            prefixed = ast.BinOp(left=ast.Constant("a"), op=ast.Add(), right=func.args[1])
            return _with_func(call, ast.Call(func.func, [func.args[0], prefixed], []))
        return None


def _with_func(call: ast.Call, func: ast.expr) -> ast.Call:
    return ast.copy_location(ast.Call(func=func, args=call.args, keywords=call.keywords), call)

"""Every code example of the documentation runs here, so the docs cannot rot.

One test per fenced block of README.md and docs/*.md:

- ``python`` blocks are executed, each in a fresh namespace, against the test
  server: ``cache`` (and ``django.core.cache.cache``) is a
  ``django_asyncredis.RedisCache`` on it, and top-level ``await`` is allowed.
- A top-level expression followed by a comment that is a Python literal states
  its result, which is checked: ``cache.incr("n")  # 2``. In the literal, ``...``
  (or ``{...}``) matches anything. Comments that are not literals are prose.
- Settings the block assigns are validated: every ``CACHES`` alias is built as
  Django builds it (an unknown or ill-typed option fails the test),
  ``MIDDLEWARE`` entries and ``SESSION_ENGINE`` are imported, and any other
  upper-case name must be a Django setting or one of ours.
- Every function the block defines is called: one without required parameters
  as it is, a view (its only required parameter is ``request``) with a request,
  anything else through a driver in ``DRIVERS`` below (which also checks what it
  did). A function whose body is only ``...`` (or a docstring) is a placeholder:
  it is defined, so its decorators run, but not called. Classes are exercised
  through a driver when they have one.
- ``json`` and ``toml`` blocks are parsed. Console, shell and text blocks, and
  MyST directives (``{toctree}``), are not code examples and are not collected;
  a fence in a language not listed here fails, so a misspelt ``pyhton`` cannot
  slip through untested.
- A block preceded by ``<!-- not-tested: <reason> -->`` is skipped with that
  reason (shown in the ``-ra`` summary). Keep such exemptions rare.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import io
import json
import re
import tokenize
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest
from django.conf import global_settings
from django.core.cache import CacheHandler, caches
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.test import AsyncRequestFactory, RequestFactory, override_settings
from django.utils.module_loading import import_string

from django_asyncredis._misconfigured import MisconfiguredCache
from tests.servers import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PYTHON = {"python", "py", "python3"}
PARSED: dict[str, Callable[[str], Any]] = {"json": json.loads, "toml": tomllib.loads}
NOT_CODE = {
    "",
    "console",
    "shell",
    "shell-session",
    "bash",
    "sh",
    "text",
    "none",
    "http",
    "html",
    "ini",
    "yaml",
    "diff",
    "django",
    "html+django",
}
#: Setting names we read: ours, django-redis's prefixed ones, and django-redis's
#: CACHE_HERD_TIMEOUT (its HerdClient's window).
OUR_SETTINGS = ("DJANGO_ASYNCREDIS_", "DJANGO_REDIS_", "CACHE_HERD_TIMEOUT")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_NOT_TESTED = re.compile(r"^\s*<!--\s*not-tested:\s*(?P<reason>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    language: str
    source: str
    not_tested: str | None  # the reason, when marked

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (CommonMark fences, any indent)."""
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening or (opening["fence"][0] == "`" and "`" in opening["info"]):
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        info = opening["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            text = lines[j]
            body.append(text[min(indent, len(text) - len(text.lstrip())) :])
            j += 1
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = _NOT_TESTED.match(lines[k]) if k >= 0 else None
        language = info.split()[0].lower() if info else ""
        if language in ("{code-block}", "{code}", "{sourcecode}"):
            language = info.split()[1].lower() if len(info.split()) > 1 else ""
        source = "\n".join(body) + "\n"
        blocks.append(Block(page, i + 1, language, source, marker["reason"] if marker else None))
        i = j + 1
    return blocks


def collected_blocks() -> list[Block]:
    return [
        block
        for path in PAGES
        for block in parse_blocks(path)
        if block.language not in NOT_CODE and not block.language.startswith("{")
    ]


BLOCKS = collected_blocks()


# The environment a block runs in.


@dataclass
class Env:
    runner: asyncio.Runner
    cache: Any
    ns: dict[str, Any] = field(default_factory=dict)

    def run(self, value: Any) -> Any:
        """Await ``value`` on the test's event loop if it is awaitable."""
        if inspect.isawaitable(value):
            return self.runner.run(_awaited(value))
        return value

    def request(self, *, asynchronous: bool, path: str = "/") -> HttpRequest:
        factory = AsyncRequestFactory() if asynchronous else RequestFactory()
        request: HttpRequest = factory.get(path)
        from django.contrib.auth.models import AnonymousUser

        request.user = AnonymousUser()
        try:
            from django_asyncredis.sessions import SessionStore
        except ImportError:
            pass
        else:
            request.session = SessionStore()
        return request


async def _awaited(value: Any) -> Any:
    return await value


@pytest.fixture
def env(redis_server: ServerProcess) -> Iterator[Env]:
    test_caches = {
        "default": {"BACKEND": "django_asyncredis.RedisCache", "LOCATION": redis_server.url}
    }
    with (
        override_settings(
            CACHES=test_caches,
            ALLOWED_HOSTS=["testserver"],
            SESSION_ENGINE="django_asyncredis.sessions",
            SESSION_CACHE_ALIAS="default",
        ),
        asyncio.Runner() as runner,
    ):
        yield Env(runner, caches["default"])
    redis_server.flush()


# Checking the results a block states in comments.


def _matches(expected: Any, actual: Any) -> bool:
    if expected is Ellipsis or expected == {Ellipsis}:
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_matches(value, actual[key]) for key, value in expected.items())
        )
    if isinstance(expected, list | tuple):
        return (
            type(expected) is type(actual)
            and len(expected) == len(actual)
            and all(map(_matches, expected, actual))
        )
    return bool(expected == actual)


def _stated_result(comment: str) -> tuple[bool, Any]:
    text = comment.lstrip("#").strip()
    try:
        return True, ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _check_result(actual: Any, comment: str, where: str) -> None:
    _, expected = _stated_result(comment)
    assert _matches(expected, actual), f"{where}: the docs say {comment!r}, got {actual!r}"


class _StatedResults(ast.NodeTransformer):
    """Wraps each top-level ``expression  # literal`` in a check of its value."""

    def __init__(self, comments: dict[int, str], page: str, offset: int) -> None:
        self.comments, self.page, self.offset = comments, page, offset

    def visit_Module(self, node: ast.Module) -> ast.Module:
        for i, statement in enumerate(node.body):
            comment = self.comments.get(statement.end_lineno or statement.lineno)
            if isinstance(statement, ast.Expr) and comment and _stated_result(comment)[0]:
                where = f"{self.page}:{statement.lineno + self.offset}"
                call = ast.Call(
                    func=ast.Name("__check_result__", ast.Load()),
                    args=[statement.value, ast.Constant(comment), ast.Constant(where)],
                    keywords=[],
                )
                node.body[i] = ast.copy_location(ast.Expr(call), statement)
        return ast.fix_missing_locations(node)


def _comments(source: str) -> dict[int, str]:
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0]: tok.string for tok in tokens if tok.type == tokenize.COMMENT}


def execute(block: Block, env: Env) -> ast.Module:
    """Run a Python block in ``env.ns``; tracebacks point into the Markdown file."""
    tree = ast.parse(block.source, filename=block.page)
    _StatedResults(_comments(block.source), block.page, block.line).visit(tree)
    ast.increment_lineno(tree, block.line)
    code = compile(
        tree,
        str(ROOT / block.page),
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    env.ns.update(
        __name__="docs_example_" + re.sub(r"\W", "_", block.id),
        __builtins__=builtins,
        __check_result__=_check_result,
        cache=env.cache,
    )
    if code.co_flags & inspect.CO_COROUTINE:
        env.run(eval(code, env.ns))
    else:
        exec(code, env.ns)
    return tree


# Settings.


def check_settings(tree: ast.Module, ns: dict[str, Any]) -> None:
    names = [
        target.id
        for statement in tree.body
        if isinstance(statement, ast.Assign | ast.AnnAssign)
        for target in (
            statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        )
        if isinstance(target, ast.Name) and target.id.isupper()
    ]
    for name in names:
        value = ns[name]
        assert hasattr(global_settings, name) or name.startswith(OUR_SETTINGS), (
            f"{name} is not a Django setting nor one of ours"
        )
        if name == "CACHES":
            handler = CacheHandler(value)
            for alias in value:
                # Building the backend parses and validates its options; bad ones give
                # a MisconfiguredCache (the app is installed), whose repr says why.
                built = handler[alias]
                assert not isinstance(built, MisconfiguredCache), repr(built)
            handler.close_all()
        elif name == "MIDDLEWARE":
            for path in value:
                import_string(path)
        elif name == "SESSION_ENGINE":
            assert hasattr(import_module(value), "SessionStore"), value


# Exercising what a block defines.

Driver = Callable[[Any, Env], None]


def _drive_profile(profile: Any, env: Env) -> None:
    loaded: list[int] = []

    async def load_profile(user_id: int) -> dict[str, Any]:
        loaded.append(user_id)
        return {"id": user_id}

    env.ns["load_profile"] = load_profile
    for _ in range(2):
        env.run(profile(env.request(asynchronous=True), 7))
    assert loaded == [7], "the second call is a cache hit"
    assert env.cache.get("profile:7") == {"id": 7}


def _drive_rebuild_user_pages(rebuild: Any, env: Env) -> None:
    env.cache.set_many({"page:1:a": 1, "page:1:b": 2, "page:2:a": 3})
    env.run(rebuild(1))
    assert env.cache.get_many(["page:1:a", "page:1:b", "page:2:a"]) == {"page:2:a": 3}
    assert not env.cache.lock("rebuild:1").locked()


def _drive_operation_get(get: Any, env: Env) -> None:
    """The design page's ``get`` is the real operation: both behave alike."""
    from django_asyncredis import _operations

    codec = env.cache._codec
    stored = codec.dumps({"a": 1}, "key")
    for operation in (get, _operations.get):
        for reply, result in ((None, "default"), (stored, {"a": 1})):
            steps = operation(codec, "key", "default")
            assert next(steps) == ("GET", "key")
            with pytest.raises(StopIteration) as stop:
                steps.send(reply)
            assert stop.value.value == result


def _drive_forget_pages_command(command: Any, env: Env) -> None:
    from django.core.management import call_command

    env.cache.set_many({"page:3:a": 1, "page:3:b": 2, "page:4:a": 3})
    out = io.StringIO()
    call_command(command(), "3", stdout=out)
    assert out.getvalue().strip() == "2 pages deleted"
    assert env.cache.get_many(["page:3:a", "page:3:b", "page:4:a"]) == {"page:4:a": 3}


def _drive_stats(stats: Any, env: Env) -> None:
    for visits in (1, 2):
        response = stats(env.request(asynchronous=False))
        assert json.loads(response.content) == {"visits": visits}


def _drive_session_view(view: Any, env: Env) -> None:
    request = env.request(asynchronous=True)
    for visits in (1, 2):
        env.run(view(request))
        assert env.run(request.session.aget("visits")) == visits


# (page, name) -> how to exercise that function or class.
DRIVERS: dict[tuple[str, str], Driver] = {
    ("README.md", "profile"): _drive_profile,
    ("docs/api.md", "rebuild_user_pages"): _drive_rebuild_user_pages,
    ("docs/design.md", "get"): _drive_operation_get,
    ("docs/sessions.md", "view"): _drive_session_view,
    ("docs/sync.md", "Command"): _drive_forget_pages_command,
    ("docs/sync.md", "stats"): _drive_stats,
}


def exercise(block: Block, tree: ast.Module, env: Env) -> None:
    definitions = [
        statement
        for statement in tree.body
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    for definition in definitions:
        obj = env.ns[definition.name]
        driver = DRIVERS.get((block.page, definition.name))
        if driver is not None:
            driver(obj, env)
        elif not isinstance(definition, ast.ClassDef) and not _placeholder(definition):
            call_with_samples(block, definition.name, obj, env)


def _placeholder(definition: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """``def view(request): ...``: only a name to decorate or pass around."""
    return all(
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        for statement in definition.body
    )


def call_with_samples(block: Block, name: str, function: Any, env: Env) -> None:
    where = f"{block.page}:{name}"
    assert not inspect.isgeneratorfunction(function), f"{where}: add a driver to DRIVERS"
    required = [
        parameter.name
        for parameter in inspect.signature(function).parameters.values()
        if parameter.default is inspect.Parameter.empty
        and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]
    asynchronous = inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        inspect.unwrap(function)
    )
    if not required:
        result = env.run(function())
    elif required == ["request"]:
        result = env.run(function(env.request(asynchronous=asynchronous)))
    else:
        pytest.fail(f"{where} takes {required}: add a driver to DRIVERS in {__file__}")
    if isinstance(result, HttpResponseBase):
        assert result.status_code < 500, f"{where} answered {result.status_code}"


# The tests.


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_doc_example(block: Block, env: Env) -> None:
    if block.not_tested is not None:
        assert block.not_tested, f"{block.id}: say why it is not tested"
        pytest.skip(f"{block.id}: {block.not_tested}")
    if block.language in PARSED:
        PARSED[block.language](block.source)
        return
    assert block.language in PYTHON, (
        f"{block.id}: unknown fence language {block.language!r}; list it in {__file__}"
    )
    tree = execute(block, env)
    check_settings(tree, env.ns)
    exercise(block, tree, env)


def test_drivers_are_used() -> None:
    """A driver whose example was edited away would test nothing."""
    defined = {
        (block.page, statement.name)
        for block in BLOCKS
        if block.language in PYTHON
        for statement in ast.parse(block.source).body
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }
    assert set(DRIVERS) <= defined, set(DRIVERS) - defined


def test_blocks_are_found() -> None:
    """The parser sees the examples (a broken parser would make every page pass)."""
    assert len([block for block in BLOCKS if block.language in PYTHON]) >= 10
    assert "python" in {block.language for block in parse_blocks(ROOT / "README.md")}

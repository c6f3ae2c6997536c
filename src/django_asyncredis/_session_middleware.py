"""Django's ``SessionMiddleware``, natively async (public as
``django_asyncredis.middleware.SessionMiddleware``).

Django's middleware is a sync ``MiddlewareMixin`` (in 4.2, 5.2 and 6.1): under
ASGI its request and response phases each run in a thread, and the final save
of a modified session uses the session's sync API there. This one is sync and
async capable: in an async chain it awaits the session's async API
(``aget_expiry_age``, ``asave``, ...) on the event loop, so with
``django_asyncredis.sessions`` a request makes no thread hop at all; in a sync
chain it calls the sync API, with no event loop.

It is kept lazy, as Django's: the request phase only makes the session object
(no I/O), and the session is read when the view first touches it.
docs/sessions.md has the measurements behind that choice.

Behaviour, as Django 5.2 and 6.1 (the stricter rules applied on 4.2 too):

- the session key is read from the ``SESSION_COOKIE_NAME`` cookie; every
  ``SESSION_COOKIE_*`` setting is read per response, as Django does;
- a session that ended up empty has its cookie deleted (if the request sent
  one); a modified, non-empty session (or any non-empty one with
  ``SESSION_SAVE_EVERY_REQUEST``) is saved and its cookie set, with a max-age
  (and expires) unless ``SESSION_EXPIRE_AT_BROWSER_CLOSE`` or ``set_expiry(0)``
  asks for a browser-session cookie;
- a 5xx response saves nothing and sets no cookie;
- ``Vary: Cookie`` whenever the session was accessed, or its cookie set or
  deleted (Django 4.2 omitted it on a save of a session nobody accessed);
- a session deleted meanwhile (a concurrent logout) raises
  ``SessionInterrupted``, which Django answers with a 400.

Any ``SESSION_ENGINE`` works. Engines without an async API (every engine on
Django 4.2 and 5.0, except ours) get their response phase run in a thread,
which is what Django's middleware does, minus the request phase's hop. On
Django 5.1+, every engine has the async API (for most of Django's own it is
``sync_to_async`` around the sync one: one hop, in the engine).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from importlib import import_module
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers

__all__ = ["SessionMiddleware"]

GetResponse = Callable[[HttpRequest], Any]  # returns a response, or an awaitable of one

_INTERRUPTED = (
    "The session was deleted before the request could save it, by a logout in a "
    "concurrent request for example."
)


class _Outcome(Enum):
    """What the response phase does with the cookie."""

    KEEP = "keep"  # nothing to store: the cookie stays as the client has it
    DELETE = "delete"  # the session was emptied: the cookie goes
    SAVE = "save"  # the session is saved and its cookie (re)set


class SessionMiddleware:
    """Attaches ``request.session`` and saves it after the view; in an async chain,
    on the event loop.

    Django hands a middleware an async ``get_response`` in an async chain; the
    instance then marks itself as a coroutine function, so Django awaits it.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        if get_response is None:
            raise ValueError("get_response must be provided.")
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        # Django's attribute name: code that makes sessions the way the middleware
        # does (tests, login helpers) reads it.
        self.SessionStore: type[SessionBase] = import_module(settings.SESSION_ENGINE).SessionStore
        self.engine_is_async = hasattr(self.SessionStore, "asave")

    def __repr__(self) -> str:
        name = getattr(self.get_response, "__qualname__", type(self.get_response).__name__)
        return f"<{type(self).__qualname__} get_response={name}>"

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.async_mode:
            return self.__acall__(request)
        self.process_request(request)
        return self.process_response(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        self.process_request(request)  # no I/O: the session loads when first used
        response = await self.get_response(request)
        return await self.aprocess_response(request, response)

    def process_request(self, request: HttpRequest) -> None:
        request.session = self.SessionStore(request.COOKIES.get(settings.SESSION_COOKIE_NAME))

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        try:
            session, accessed, outcome = _state(request, response)
        except AttributeError:
            return response  # the view removed request.session: nothing to save
        if outcome is _Outcome.SAVE:
            max_age = None if session.get_expire_at_browser_close() else session.get_expiry_age()
            try:
                session.save()
            except UpdateError as exc:
                raise SessionInterrupted(_INTERRUPTED) from exc
            _set_cookie(response, session, max_age)
        return _finish(request, response, outcome, accessed)

    async def aprocess_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if not self.engine_is_async:
            return await sync_to_async(self.process_response, thread_sensitive=True)(
                request, response
            )
        try:
            session, accessed, outcome = _state(request, response)
        except AttributeError:
            return response
        if outcome is _Outcome.SAVE:
            # The a-methods: a session nobody touched (SESSION_SAVE_EVERY_REQUEST)
            # loads here, on the loop.
            at_close = await session.aget_expire_at_browser_close()
            max_age = None if at_close else await session.aget_expiry_age()
            try:
                await session.asave()
            except UpdateError as exc:
                raise SessionInterrupted(_INTERRUPTED) from exc
            _set_cookie(response, session, max_age)
        return _finish(request, response, outcome, accessed)


def _state(request: HttpRequest, response: HttpResponseBase) -> tuple[Any, bool, _Outcome]:
    """The session, whether it was accessed, and what to do with it: decided from
    the session's flags alone, before any I/O. AttributeError when the request
    has no session (any object with a session's flags will do, as for Django)."""
    session = request.session
    accessed: bool = session.accessed
    modified: bool = session.modified
    empty: bool = session.is_empty()
    if empty and settings.SESSION_COOKIE_NAME in request.COOKIES:
        return session, accessed, _Outcome.DELETE
    wants_save = modified or settings.SESSION_SAVE_EVERY_REQUEST
    if wants_save and not empty and response.status_code < 500:
        return session, accessed, _Outcome.SAVE
    return session, accessed, _Outcome.KEEP


def _set_cookie(response: HttpResponseBase, session: Any, max_age: int | None) -> None:
    # Given a max-age, Django's set_cookie also writes the matching Expires.
    response.set_cookie(
        settings.SESSION_COOKIE_NAME,
        session.session_key or "",
        max_age=max_age,
        domain=settings.SESSION_COOKIE_DOMAIN,
        path=settings.SESSION_COOKIE_PATH,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=settings.SESSION_COOKIE_HTTPONLY,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )


def _finish(
    request: HttpRequest, response: HttpResponseBase, outcome: _Outcome, accessed: bool
) -> HttpResponseBase:
    """Delete the cookie of an emptied session; vary on Cookie when the response
    depends on it: the session was read, or the cookie changes."""
    if outcome is _Outcome.DELETE:
        response.delete_cookie(
            settings.SESSION_COOKIE_NAME,
            path=settings.SESSION_COOKIE_PATH,
            domain=settings.SESSION_COOKIE_DOMAIN,
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )
    if accessed or outcome is not _Outcome.KEEP:
        patch_vary_headers(response, ("Cookie",))
    return response

"""URL routing for the emulator's two APIs, on :mod:`werkzeug.routing`.

Each route is a werkzeug rule string, an HTTP method, a handler and the **API method name**
it serves: the discovery document ``id`` (``storage.objects.insert``,
``healthcare.projects.locations.datasets.dicomStores.import``), which the fault injector
can select on and the request log records.

Rules are matched against the *raw* (still percent-encoded) path, so a rule decides whether
an encoded slash (``%2F``) may appear in a variable: only the ``object`` converter (Cloud
Storage object names) allows it; any other variable holding ``%2F``/``%5C`` is a 400.
Variables are percent-decoded after matching; ``.``/``..``, NUL and invalid UTF-8 are a 400.

Converters (besides werkzeug's ``default`` ``[^/]+`` and ``any(a, b)``):

* ``id``: one segment without ``:``, so Google's custom verbs stay out of IDs
  (``…/dicomStores/<id:store>:import`` vs ``…/dicomStores/<id:store>``);
* ``object``: one or more segments (``[^/].*?``), for object names.

A path no rule matches is a 404, a path matched only under other methods a 405, both in
Google's error shape. ``GET`` rules also serve ``HEAD`` (werkzeug adds it).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter, Map, MapAdapter, PathConverter, RequestRedirect, Rule

from dicom_transfer_emulator.errors import ApiException, invalid_argument

if TYPE_CHECKING:
    from dicom_transfer_emulator.server.http import Request, Response

Handler = Callable[["Request"], "Response"]
#: One route of an API's table: ``(HTTP method, werkzeug rule, handler, API method name)``;
#: the Healthcare tables give the discovery id after ``healthcare.projects.locations.``.
Route = tuple[str, str, Handler, str]

_ENCODED_SLASH = re.compile(r"%(2f|5c)", re.IGNORECASE)
# A leading ``/<any(a, b):name>`` segment (API versions), expanded into static rules.
_LEADING_ANY = re.compile(r"^/<any\((?P<values>[^)]*)\):(?P<name>[a-zA-Z_]\w*)>(?P<rest>/.*)$")
_VARIABLE = re.compile(r"<(?:(?P<converter>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_]\w*)>")


class _IdConverter(BaseConverter):
    """One path segment without ``:`` (resource IDs before a ``:verb``)."""

    regex = r"[^/:]+"


class _ObjectConverter(PathConverter):
    """One or more segments: a Cloud Storage object name (``%2F`` allowed)."""

    regex = r"[^/].*?"


@dataclass(frozen=True)
class _Endpoint:
    api_method: str
    handler: Handler
    # Variables that may hold an encoded slash (those using the ``object`` converter).
    slashed: frozenset[str]


@dataclass(frozen=True)
class RouteMatch:
    """The route a request path matched.

    Attributes:
        api_method: Discovery ``id`` of the API method, e.g. ``storage.objects.get``.
        handler: Called with the :class:`~.server.http.Request`.
        params: Path variables, percent-decoded.
    """

    api_method: str
    handler: Handler
    params: dict[str, str]


class Router:
    """Maps (HTTP method, raw path) to a handler and its API method name.

    Thread-safe: routes may be added while requests are matched (the Healthcare side adds
    its routes after the servers are bound).
    """

    def __init__(self) -> None:
        """Create an empty router."""
        self._map = Map(
            converters={"id": _IdConverter, "object": _ObjectConverter},
            strict_slashes=True,
            merge_slashes=False,
            redirect_defaults=False,
        )
        self._lock = threading.Lock()
        self._adapter: MapAdapter | None = None

    def add(self, method: str, rule: str, handler: Handler, *, api_method: str) -> None:
        """Register a route.

        Args:
            method: HTTP method (``"GET"``…) or ``"*"`` for any.
            rule: werkzeug rule string over the raw path, e.g.
                ``"/storage/v1/b/<bucket>/o/<object:object>"``.
            handler: Called with the request; returns a response or raises
                :class:`~.errors.ApiException`.
            api_method: Discovery ``id`` of the method (``emulator.*`` for admin routes).
        """
        slashed = frozenset(
            m.group("name") for m in _VARIABLE.finditer(rule) if m.group("converter") == "object"
        )
        endpoint = _Endpoint(api_method, handler, slashed)
        methods = None if method == "*" else [method.upper()]
        # werkzeug's matcher takes the first dynamic transition that leads to a full match;
        # two rules starting with different ``any(…)`` sets would be tried set by set, and a
        # generic rule under one set could shadow a specific one under the other. A static
        # first segment per value keeps every version's rules in one subtree.
        leading = _LEADING_ANY.match(rule)
        if leading is None:
            rules = [Rule(rule, endpoint=endpoint, methods=methods)]
        else:
            name, rest = leading.group("name"), leading.group("rest")
            rules = [
                Rule(
                    f"/{value.strip()}{rest}",
                    endpoint=endpoint,
                    methods=methods,
                    defaults={name: value.strip()},
                )
                for value in leading.group("values").split(",")
            ]
        with self._lock:
            for item in rules:
                self._map.add(item)
            self._adapter = None

    def match(self, method: str, raw_path: str) -> RouteMatch:
        """Find the route of a request.

        Args:
            method: HTTP method.
            raw_path: Percent-encoded path without the query string.

        Returns:
            The matched route with its decoded variables.

        Raises:
            ApiException: 404 when no route knows the path, 405 when only other methods
                do, 400 for a variable that is not a valid ID or name.
        """
        with self._lock:
            if self._adapter is None:
                self._adapter = self._map.bind("emulator")
            adapter = self._adapter
        try:
            endpoint, values = adapter.match(raw_path, method)
        except MethodNotAllowed:
            raise ApiException(405, f"Method {method} is not allowed on {raw_path}.") from None
        except (NotFound, RequestRedirect):
            raise ApiException(404, f"Not Found: {method} {raw_path}") from None
        assert isinstance(endpoint, _Endpoint)
        return RouteMatch(endpoint.api_method, endpoint.handler, _decode(values, endpoint.slashed))

    def api_methods(self) -> set[str]:
        """The API method names of every route (for checks against discovery documents)."""
        with self._lock:
            return {rule.endpoint.api_method for rule in self._map.iter_rules()}


def _decode(values: Mapping[str, Any], slashed: frozenset[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, raw in values.items():
        raw = str(raw)
        if name not in slashed and _ENCODED_SLASH.search(raw):
            raise invalid_argument(f"Invalid {name}: encoded slashes are not allowed in IDs.")
        try:
            value = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise invalid_argument(f"Invalid {name}: not valid UTF-8.") from None
        if value in (".", "..") or "\x00" in value:
            raise invalid_argument(f"Invalid {name}: {value!r}.")
        params[name] = value
    return params


__all__ = ["Handler", "RouteMatch", "Router"]

"""Each HTTP endpoint declared once, next to its view: the route Chalice serves, what /openapi.json says of it, who may
call it, the model its body is read into and the models its replies are written from.

A view receives its path parameters, `caller` (the App, on app routes) and `body` (the parsed request model, when
the endpoint declares one), and returns a reply model, a `Reply` (another status, or headers), or None for 204.
The wrapper checks that the reply is what the endpoint declares for that status: a mismatch is a bug, and fails the
tests that reach it, rather than a reply that quietly breaks the published contract.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalice import Blueprint, Response
from chalice.app import Request
from pydantic import BaseModel

from chalicelib import errors, wiring
from chalicelib.edge import replies, requests
from chalicelib.services import access

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Auth(enum.Enum):
    PUBLIC = "public"
    APP = "app"  # the app's bearer token; the view gets the App as `caller`
    OPERATOR = "operator"  # ADMIN_API_KEY
    ONBOARDING = "onboarding"  # the operator key, unless ONBOARDING_MODE=open; limited per client IP
    GITHUB = "github"  # X-Hub-Signature-256 over the raw body, checked by the service


@dataclass(frozen=True)
class Endpoint:
    method: str  # lower case, as OpenAPI writes it
    path: str
    summary: str
    tag: str
    auth: Auth
    replies: Mapping[int, type[BaseModel] | None]  # success statuses; None: no JSON body
    request: type[BaseModel] | None = None
    description: str = ""
    errors: tuple[int, ...] = ()
    query: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    body: BaseModel | None
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


ENDPOINTS: list[Endpoint] = []


class Routes:
    """A Chalice blueprint whose every route is declared as an Endpoint; `prefix`, `tag` and `auth` are defaults."""

    def __init__(self, import_name: str, *, prefix: str = "", tag: str = "", auth: Auth = Auth.PUBLIC) -> None:
        self.blueprint = Blueprint(import_name)
        self._prefix, self._tag, self._auth = prefix, tag, auth

    @property
    def current_request(self) -> Request:
        return self.blueprint.current_request

    def endpoint(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        replies: Mapping[int, type[BaseModel] | None],
        tag: str = "",
        auth: Auth | None = None,
        request: type[BaseModel] | None = None,
        description: str = "",
        errors: tuple[int, ...] = (),
        query: tuple[str, ...] = (),
        content_types: tuple[str, ...] = ("application/json",),
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        path = self._prefix + path
        endpoint = Endpoint(
            method.lower(),
            path,
            summary,
            tag or self._tag,
            auth or self._auth,
            replies,
            request,
            description,
            errors,
            query,
        )
        ENDPOINTS.append(endpoint)

        def declare(view: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(view)
            def serve(**path_parameters: str) -> Response:
                return _serve(endpoint, view, self.current_request, path_parameters)

            self.blueprint.route(path, methods=[method.upper()], content_types=list(content_types))(serve)
            return view

        return declare


def refuse_other_methods(routes: Routes) -> None:
    """A declared path called with an undeclared method gets 405 with Allow, not the catch-all's 404."""
    allowed: dict[str, list[str]] = {}
    for endpoint in ENDPOINTS:
        allowed.setdefault(endpoint.path, []).append(endpoint.method.upper())
    for number, (path, methods) in enumerate(sorted(allowed.items())):
        others = [method for method in HTTP_METHODS if method not in methods]
        if others:
            allow = ", ".join(sorted(methods))
            routes.blueprint.route(path, methods=others, name=f"refuse_method_{number}")(_refusal(allow))


def _refusal(allow: str) -> Callable[..., Response]:
    def refuse(**path_parameters: str) -> Response:
        reply = replies.error_body("method_not_allowed", "this path does not take that method")
        return replies.json_response(reply, 405, {"Allow": allow})

    return refuse


def _serve(endpoint: Endpoint, view: Callable[..., Any], request: Request, path_parameters: dict[str, str]) -> Response:
    try:
        arguments: dict[str, Any] = dict(path_parameters)
        caller = _admit(endpoint.auth, request)
        if caller is not None:
            arguments["caller"] = caller
        if endpoint.request is not None:
            max_bytes = wiring.configs().api.max_request_bytes
            arguments["body"] = requests.parse_body(request, endpoint.request, max_bytes=max_bytes)
        result = view(**arguments)
    except errors.ServiceError as error:
        return replies.error_response(error)
    return _written(endpoint, result)


def _admit(auth: Auth, request: Request) -> Any:
    if auth in (Auth.PUBLIC, Auth.GITHUB):
        return None
    deps, config, token = wiring.deps(), wiring.configs().access, requests.bearer_token(request)
    if auth is Auth.APP:
        return access.admit_app(token, config=config, deps=deps)
    if auth is Auth.OPERATOR:
        access.authenticate_operator(token, config=config)
    else:
        access.admit_onboarding(token, requests.client_ip(request), config=config, deps=deps)
    return None


def _written(endpoint: Endpoint, result: Any) -> Response:
    if isinstance(result, Response):  # a page or a document that is no reply model (/docs, /openapi.json)
        _check(endpoint, result.status_code, None)
        return result
    reply = result if isinstance(result, Reply) else Reply(result, _status_for(endpoint, result))
    _check(endpoint, reply.status, reply.body)
    if reply.body is None:
        return Response(body="", status_code=reply.status, headers=dict(reply.headers))
    return replies.json_response(reply.body, reply.status, reply.headers)


def _status_for(endpoint: Endpoint, body: BaseModel | None) -> int:
    matching = [status for status, model in endpoint.replies.items() if (model is None) == (body is None)]
    matching = [status for status in matching if body is None or isinstance(body, endpoint.replies[status])]  # type: ignore[arg-type]
    if len(matching) != 1:
        raise TypeError(f"{endpoint.method} {endpoint.path}: say which status this reply has ({sorted(matching)})")
    return matching[0]


def _check(endpoint: Endpoint, status: int, body: BaseModel | None) -> None:
    if status not in endpoint.replies:
        raise TypeError(f"{endpoint.method} {endpoint.path} does not declare a {status} reply")
    declared = endpoint.replies[status]
    if (declared is None) != (body is None) or (body is not None and type(body) is not declared):
        raise TypeError(f"{endpoint.method} {endpoint.path} declares {declared} for {status}, not {type(body)}")

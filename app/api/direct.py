"""A route FastAPI documents as usual but calls directly, for the hottest write route (registrations).

FastAPI's request handling (solving the endpoint's parameters, reading and validating the body, then
validating and serialising the return value) costs about a fifth of a policy registration's whole
time on the server (bench/api.py, py-spy). A `DirectRoute` keeps what FastAPI gives a route from its
signature (routing, the OpenAPI operation with its path and header parameters, `response_model` and
`openapi_extra` for the body), and at request time calls the endpoint with the path parameters and
headers as the strings the request carries and the `Request`; the endpoint reads its body and returns
its `Response` itself. `get_route_handler` is FastAPI's documented hook for a custom route class.

Only for endpoints whose parameters are the `Request`, `str` path parameters and optional `str`
headers: anything else (a dependency, a query parameter, a body parameter) is refused when the route
is added, since nothing here would validate it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        if (
            dependant.dependencies
            or dependant.body_params
            or dependant.query_params
            or dependant.cookie_params
            or dependant.request_param_name is None
        ):
            raise TypeError(f"{self.path}: a direct route takes the Request, path parameters and headers only")
        for field in [*dependant.path_params, *dependant.header_params]:
            if field.field_info.annotation not in (str, str | None):
                raise TypeError(f"{self.path}: parameter {field.name} of a direct route must be a str")
        paths = [(field.name, field.alias) for field in dependant.path_params]
        headers = [(field.name, field.alias) for field in dependant.header_params]
        request_name = dependant.request_param_name
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            kwargs: dict[str, Any] = {request_name: request}
            path_params = request.path_params
            for name, alias in paths:
                kwargs[name] = path_params[alias]
            for name, alias in headers:
                kwargs[name] = request.headers.get(alias)
            response: Response = await endpoint(**kwargs)
            return response

        return handler

"""Hostile input cannot hurt: a body limit, and 4xx (never 5xx) for requests the Seldon
wrapper itself cannot read.

The real entry point (`seldon-core-microservice`, seldon-core 1.17.1) registers a
component's `model_error_handler` attribute as a Flask blueprint on the app it builds,
before its own error handlers. That is the one hook the wrapper offers, and it is
enough, because a blueprint can:

* wrap the app's WSGI callable when registered (`record_once`): `BodyLimit` answers 413
  from the Content-Length header before a byte of the body is read, and reads chunked
  bodies only up to the limit;
* run before every request (`before_app_request`): the wrapper parses the request in
  its route, where a bad `json=` form field or query parameter, a bad multipart field,
  deep nesting or a feedback message that does not fit its proto raise plain Python
  errors that its catch-all handler turns into HTTP 500. The guard runs the wrapper's
  own parsing first and turns those failures into 400 naming the encoding and the fix.
  Flask caches the parsed JSON body and form, so only the `json=` field and multipart
  fields are parsed twice;
* handle `HTTPException` (`app_errorhandler`): the wrapper's `errorhandler(Exception)`
  also catches Werkzeug's 404, 405 and 413 and answers them with 500.

Answers use the wrapper's own error body (`{"status": {"info": ..., "reason": ...}}`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from flask import Blueprint, Response, request
from seldon_core.flask_utils import SeldonMicroserviceException, get_request
from seldon_core.utils import extract_feedback_request_parts, json_to_feedback
from seldon_core.wrapper import PAYLOAD_PASSTHROUGH
from werkzeug.exceptions import BadRequest, HTTPException

# The gRPC default (4 MiB) for the largest message, so REST and gRPC refuse alike.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
PARAMETER = "max_request_bytes"
# Flask endpoint names of the wrapper's routes that read a SeldonMessage.
_MESSAGE_ROUTES = {"Predict", "TransformInput", "TransformOutput", "Route", "Aggregate"}
_FEEDBACK_ROUTE = "SendFeedback"
_FIX = {
    "message": 'send a JSON SeldonMessage with Content-Type: application/json, e.g. {"data": {"ndarray": [[...]]}}',
    "feedback": 'send a JSON Feedback with Content-Type: application/json, e.g. {"request": {"data": ...}, '
    '"truth": {"data": ...}}',
}

StartResponse = Callable[..., Any]


def error_body(message: str, reason: str) -> dict[str, Any]:
    return SeldonMicroserviceException(message, reason=reason).to_dict()


class BodyLimit:
    """WSGI middleware: bodies over `limit` bytes get 413 without being read."""

    def __init__(self, app: Callable[[dict, StartResponse], Iterable[bytes]], limit: int) -> None:
        self.app = app
        self.limit = limit

    def _refuse(self, start_response: StartResponse, status: str, message: str, reason: str) -> list[bytes]:
        body = json.dumps(error_body(message, reason)).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _too_large(self, start_response: StartResponse, size: str) -> list[bytes]:
        message = (
            f"request body of {size} bytes is over this server's limit of {self.limit} bytes: send fewer rows "
            f"per request (the limit is the Seldon parameter {PARAMETER})"
        )
        return self._refuse(start_response, "413 Request Entity Too Large", message, "REQUEST_TOO_LARGE")

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH")
        if length:
            try:
                size = int(length)
            except ValueError:  # gunicorn rejects these itself; other servers may not
                return self._refuse(start_response, "400 Bad Request", f"bad Content-Length {length!r}", "BAD_REQUEST")
            if size > self.limit:
                return self._too_large(start_response, str(size))
        elif "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            # No size up front: read one byte past the limit at most, then hand the
            # app a bounded copy (gunicorn's chunked reader returns what was asked).
            data = environ["wsgi.input"].read(self.limit + 1)
            if len(data) > self.limit:
                return self._too_large(start_response, f"more than {self.limit}")
            environ["wsgi.input"] = io.BytesIO(data)
            environ["CONTENT_LENGTH"] = str(len(data))
        return self.app(environ, start_response)


def _encoding() -> str:
    """Where the wrapper's `get_request` looks for the message, in its order."""
    content_type = request.content_type or ""
    if "multipart/form-data" in content_type:
        return "a multipart/form-data field (each field but strData must be JSON)"
    if request.form.get("json"):
        return 'the form field "json"'
    if request.args.get("json"):
        return 'the query parameter "json"'
    return f"the request body (Content-Type {content_type or 'not set'})"


def _json_error() -> str:
    """Why the body is no JSON (Flask's BadRequest says only "could not understand")."""
    try:
        json.loads(request.get_data(cache=True))
    except Exception as e:  # noqa: BLE001 - the reason is what we are after
        return f"{type(e).__name__}: {str(e)[:300]}"
    return "unknown reason"


def _read_message() -> None:
    """Parse the request exactly as the wrapper's route will, failing with 400."""
    endpoint = request.url_rule.endpoint if request.url_rule else None
    if request.routing_exception is not None or endpoint not in (*_MESSAGE_ROUTES, _FEEDBACK_ROUTE):
        return
    fix = _FIX["feedback" if endpoint == _FEEDBACK_ROUTE else "message"]
    try:
        if request.is_json and not (request.form.get("json") or request.args.get("json")):
            try:
                request.get_json()  # cached for the wrapper's own call
            except BadRequest:
                raise SeldonMicroserviceException(f"invalid JSON: {_json_error()}", reason="BAD_JSON") from None
        message = get_request(skip_decoding=PAYLOAD_PASSTHROUGH and endpoint == "Predict")
        if endpoint == _FEEDBACK_ROUTE:
            extract_feedback_request_parts(json_to_feedback(message))
    except HTTPException:
        raise  # already a 4xx: _http_error answers it
    except SeldonMicroserviceException as e:
        if e.status_code >= 500:
            raise
        raise SeldonMicroserviceException(
            f"cannot read {_encoding()}: {e.message}; {fix}", 400, reason=e.reason
        ) from None
    except Exception as e:  # noqa: BLE001 - whatever the wrapper's parsing raises, the request caused it
        what = "a Feedback message" if endpoint == _FEEDBACK_ROUTE else "a SeldonMessage"
        raise SeldonMicroserviceException(
            f"cannot read {what} from {_encoding()}: {type(e).__name__}: {str(e)[:300]}; {fix}",
            400,
            reason="BAD_REQUEST_ENCODING",
        ) from None


def _http_error(e: HTTPException) -> Response:
    message = e.description or e.name
    if e.code in (404, 405):  # the wrapper's static-file route makes either one likely
        message = f"{request.method} {request.path}: {e.name.lower()}; predictions are POST /api/v1.0/predictions"
    reason = (e.name or "HTTP_ERROR").upper().replace(" ", "_")
    return Response(json.dumps(error_body(message, reason)), status=e.code or 500, mimetype="application/json")


def request_guard(max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES) -> Blueprint:
    """The blueprint to expose as a component's `model_error_handler`."""
    guard = Blueprint("modeldeploy_request_guard", __name__)

    @guard.record_once
    def _install(state: Any) -> None:
        state.app.wsgi_app = BodyLimit(state.app.wsgi_app, max_request_bytes)

    guard.before_app_request(_read_message)
    guard.app_errorhandler(HTTPException)(_http_error)
    return guard


def parse_limit(value: Any) -> int:
    """`max_request_bytes` from a Seldon parameter; ValueError with a message if bad."""
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{PARAMETER}={value!r} is not an integer number of bytes") from None
    if limit < 1024:
        raise ValueError(f"{PARAMETER}={limit} is below 1024 bytes: no useful request fits")
    return limit

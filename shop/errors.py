"""Error pages in the active theme, and JSON errors for API and JSON-asking clients."""

import logging

from flask import jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from shop import themes

log = logging.getLogger(__name__)


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, code: str, message: str):
    if wants_json():
        return jsonify(error={"code": code, "message": message}), status
    return themes.render("error.html", status=status, message=message), status


def register_error_handlers(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(
            400, "csrf", "The form expired or was sent from elsewhere. Go back, reload and retry."
        )

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return error_response(exc.code, exc.name.lower().replace(" ", "_"), exc.description)

    @app.errorhandler(Exception)
    def server_error(exc):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "server_error", "Something went wrong on our side.")

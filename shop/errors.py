"""Error pages in the active theme, and JSON errors for API and JSON-asking clients."""

import logging

from flask import jsonify, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from shop import themes
from shop.messages import N_

log = logging.getLogger(__name__)

# What a visitor reads on an error page instead of werkzeug's English default description.
# Only used when the view did not give a description of its own.
PAGE_MESSAGES = {
    400: N_("The request could not be understood. Go back and try again."),
    403: N_("You do not have access to this page."),
    404: N_("This page does not exist. It may have moved, or the address has a typo."),
    405: N_("This page cannot be used that way."),
    413: N_("What you sent is too large."),
    429: N_("Too many requests. Please wait a moment and try again."),
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def error_response(status: int, code: str, message: str, page_message: str | None = None):
    """API clients get the English `message`; people get the page in their language."""
    if wants_json():
        return jsonify(error={"code": code, "message": message}), status
    text = gettext(page_message or message)
    return themes.render("error.html", status=status, message=text), status


def register_error_handlers(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(
            400,
            "csrf",
            N_("The form expired or was sent from elsewhere. Go back, reload and retry."),
        )

    @app.errorhandler(HTTPException)
    def http_error(exc):
        default = exc.description == type(exc).description
        page_message = PAGE_MESSAGES.get(exc.code) if default else None
        code = exc.name.lower().replace(" ", "_")
        return error_response(exc.code, code, exc.description, page_message)

    @app.errorhandler(Exception)
    def server_error(exc):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "server_error", N_("Something went wrong on our side."))

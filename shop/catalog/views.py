"""Serving the product images staff uploaded (public: the storefront shows them)."""

from flask import Blueprint, abort, send_from_directory

from shop.catalog.service import UPLOAD_NAME_RE, upload_dir

bp = Blueprint("catalog", __name__)


@bp.route("/uploads/<name>")
def upload(name):
    """Only names the shop generated: nothing else in the folder, nothing outside it."""
    if not UPLOAD_NAME_RE.match(name):
        abort(404)
    return send_from_directory(upload_dir(), name, max_age=86400)

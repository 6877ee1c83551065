from flask import Blueprint

from shop import themes

bp = Blueprint("storefront", __name__)


@bp.route("/")
def home():
    return themes.render("home.html")

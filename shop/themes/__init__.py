"""Storefront themes: folders of Jinja templates and static files under themes/.

A theme template is addressed as ``theme/<name>/<path>``. The loader looks in the named theme
first and falls back to the default theme, so a theme only ships what it changes. Inside a
theme template, ``{% extends "base.html" %}`` stays in the same theme (see
`ThemedEnvironment.join_path`). Admin templates live in ``shop/templates`` under other names,
so no theme can replace them.
"""

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from flask import abort, render_template, send_from_directory
from flask.templating import Environment
from jinja2 import BaseLoader, ChoiceLoader, TemplateNotFound
from jinja2.loaders import split_template_path
from werkzeug.security import safe_join

from shop import settings
from shop.config import ROOT
from shop.messages import N_
from shop.settings import SettingError
from shop.settings.registry import parse_text

THEME_DIR = ROOT / "themes"
DEFAULT = "default"
PREFIX = "theme/"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Theme:
    name: str
    title: str
    version: str
    description: str
    preview: str
    path: Path


def available() -> dict[str, Theme]:
    """The installed themes by folder name. A folder with a broken theme.json is skipped with
    a warning, so one bad upload cannot take the themes page and the storefront down."""
    themes = {}
    for path in sorted(THEME_DIR.iterdir()):
        meta_file = path / "theme.json"
        if not NAME_RE.match(path.name) or not meta_file.is_file():
            continue
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("skipping theme %s: unreadable theme.json (%s)", path.name, exc)
            continue
        if not isinstance(meta, dict):
            log.warning("skipping theme %s: theme.json is not an object", path.name)
            continue
        themes[path.name] = Theme(
            name=path.name,
            title=meta.get("name", path.name),
            version=str(meta.get("version", "")),
            description=meta.get("description", ""),
            preview=meta.get("preview", ""),
            path=path,
        )
    return themes


def parse_theme(raw: str) -> str:
    """Only an installed theme can become active, and the refusal names the ones there are."""
    name = parse_text(64)(raw)
    installed = available()
    if name not in installed:
        raise SettingError(
            N_("There is no theme named %(name)s. Installed themes: %(themes)s."),
            name=repr(name),
            themes=", ".join(sorted(installed)),
        )
    return name


settings.register(
    "theme.active",
    DEFAULT,
    N_("The storefront theme customers see"),
    parse=parse_theme,
    choices=lambda: sorted(available()),
)


def active() -> str:
    """The active theme, or the default one if the active theme's folder was removed."""
    name = settings.get("theme.active")
    return name if NAME_RE.match(name) and (THEME_DIR / name / "theme.json").is_file() else DEFAULT


class ThemeLoader(BaseLoader):
    """Loads ``theme/<name>/<path>`` from the theme's templates, else from the default theme's.

    The path is split with Jinja's own check, which refuses ``..`` and also drops empty
    segments, so ``theme/x//etc/passwd`` cannot become an absolute path.
    """

    def get_source(self, environment, template):
        if not template.startswith(PREFIX):
            raise TemplateNotFound(template)
        name, _, rel = template[len(PREFIX) :].partition("/")
        pieces = split_template_path(rel)
        if not pieces or not NAME_RE.match(name):
            raise TemplateNotFound(template)
        for theme in (name, DEFAULT):
            path = THEME_DIR.joinpath(theme, "templates", *pieces)
            if path.is_file():
                source = path.read_text(encoding="utf-8")
                mtime = path.stat().st_mtime
                return source, str(path), lambda p=path, m=mtime: p.stat().st_mtime == m
        raise TemplateNotFound(template)


class ThemedEnvironment(Environment):
    """Resolves names used inside a theme template relative to that theme."""

    def join_path(self, template, parent):
        if parent.startswith(PREFIX) and not template.startswith(PREFIX):
            name = parent[len(PREFIX) :].split("/", 1)[0]
            return f"{PREFIX}{name}/{template}"
        return template


def render(template: str, **context) -> str:
    """Render a storefront page with the active theme."""
    return render_template(f"{PREFIX}{active()}/{template}", **context)


def static_file(name: str, filename: str):
    """Serve a theme's static file, falling back to the default theme's."""
    if name not in available():
        abort(404)
    for theme in (name, DEFAULT):
        folder = THEME_DIR / theme / "static"
        path = safe_join(str(folder), filename)
        if path is None:
            abort(404)
        if Path(path).is_file():
            return send_from_directory(folder, filename, max_age=3600)
    abort(404)


def init_app(app) -> None:
    app.add_url_rule("/theme/<name>/static/<path:filename>", "theme_static", static_file)

    @app.context_processor
    def theme_context():
        name = active()
        return {"theme_name": name}

    app.jinja_env.loader = ChoiceLoader([ThemeLoader(), app.jinja_loader])

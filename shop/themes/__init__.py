"""Storefront themes: folders of Jinja templates and static files under themes/.

A theme template is addressed as ``theme/<name>/<path>``. The loader looks in the named theme
first and falls back to the default theme, so a theme only ships what it changes. Inside a
theme template, ``{% extends "base.html" %}`` stays in the same theme (see
`ThemedEnvironment.join_path`). Admin templates live in ``shop/templates`` under other names,
so no theme can replace them.
"""

import json
from dataclasses import dataclass
from pathlib import Path

from flask import abort, render_template, send_from_directory
from flask.templating import Environment
from jinja2 import BaseLoader, ChoiceLoader, TemplateNotFound

from shop import settings
from shop.config import ROOT
from shop.settings.registry import parse_text

THEME_DIR = ROOT / "themes"
DEFAULT = "default"
PREFIX = "theme/"


@dataclass(frozen=True)
class Theme:
    name: str
    title: str
    version: str
    description: str
    preview: str
    path: Path


def available() -> dict[str, Theme]:
    themes = {}
    for path in sorted(THEME_DIR.iterdir()):
        meta_file = path / "theme.json"
        if not meta_file.is_file():
            continue
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        themes[path.name] = Theme(
            name=path.name,
            title=meta.get("name", path.name),
            version=str(meta.get("version", "")),
            description=meta.get("description", ""),
            preview=meta.get("preview", ""),
            path=path,
        )
    return themes


settings.register(
    "theme.active",
    DEFAULT,
    "The storefront theme customers see",
    parse=parse_text(64),
    choices=lambda: sorted(available()),
)


def active() -> str:
    name = settings.get("theme.active")
    return name if (THEME_DIR / name / "theme.json").is_file() else DEFAULT


class ThemeLoader(BaseLoader):
    def get_source(self, environment, template):
        if not template.startswith(PREFIX):
            raise TemplateNotFound(template)
        name, _, rel = template[len(PREFIX) :].partition("/")
        if not rel or ".." in rel.split("/") or "/" in name or name.startswith("."):
            raise TemplateNotFound(template)
        for theme in (name, DEFAULT):
            path = THEME_DIR / theme / "templates" / rel
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
        if (folder / filename).is_file():
            return send_from_directory(folder, filename, max_age=3600)
    abort(404)


def init_app(app) -> None:
    app.add_url_rule("/theme/<name>/static/<path:filename>", "theme_static", static_file)

    @app.context_processor
    def theme_context():
        name = active()
        return {"theme_name": name}

    app.jinja_env.loader = ChoiceLoader([ThemeLoader(), app.jinja_loader])

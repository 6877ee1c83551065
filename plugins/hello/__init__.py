"""The smallest useful plugin, meant to be copied: a footer greeting and an event log.

Copy this folder to plugins/<your_name>/, change plugin.json, keep the hooks you need and
delete the rest. Every hook is listed in shop/hookspecs.py and plugins/README.md.
"""

import logging

from markupsafe import Markup

from shop.plugins import hookimpl, registry

NAME = "hello"
log = logging.getLogger(__name__)


@hookimpl
def template_slot(name):
    """Themes call every slot on every page, so answer only for the one we fill."""
    if name != "footer":
        return None
    greeting = registry().settings(NAME)["greeting"]
    # Markup.format escapes the staff-typed greeting while keeping our own tag.
    return Markup('<p class="plugin-hello">{}</p>').format(greeting) if greeting else None


@hookimpl
def notify(event, payload):
    """Log the event name and payload keys only: payloads carry emails and reset links."""
    log.info("event %s (%s)", event, ", ".join(sorted(payload)))

"""Messages shown to people: marked for translation where they are written, translated where
they are shown.

Services refuse in English, because the CLI, the logs and the tests read English; a view shows
the same refusal in the visitor's language with `Refusal.translated`. The message and its
values are kept apart (never an f-string), so one translation covers every value.

This module imports nothing from the shop, so the settings registry can use it too.
"""

from flask_babel import gettext


def N_(message: str) -> str:
    """Mark a message for extraction without translating it: where it is written (a module's
    top level, a service) there is no request and so no language yet. pybabel extracts ``N_``
    by default."""
    return message


class Refusal(ValueError):
    """A refused request whose message is fit to show to the person who made it."""

    def __init__(self, message: str, **params):
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params

    def translated(self) -> str:
        """The message in the current request's language, with its values filled in."""
        return gettext(self.message, **self.params)

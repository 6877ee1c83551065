"""Messages shown to people: marked for translation where they are written, translated where
they are shown.

Services refuse in English, because the CLI, the logs and the tests read English; a view shows
the same refusal in the visitor's language with `Refusal.translated`. The message and its
values are kept apart (never an f-string), so one translation covers every value.

A value may itself be a message (a `Message`, a `Refusal`, several `joined`): it is translated
with the message around it, so "line 3: <what is wrong>" reads in one language.

This module imports nothing from the shop, so the settings registry can use it too.
"""

from flask_babel import gettext


def N_(message: str) -> str:
    """Mark a message for extraction without translating it: where it is written (a module's
    top level, a service) there is no request and so no language yet. pybabel extracts ``N_``
    by default."""
    return message


def _translated_params(params: dict) -> dict:
    return {k: v.translated() if hasattr(v, "translated") else v for k, v in params.items()}


class Message(str):
    """A message that is not a refusal (a field's problem, a warning): the English text as a
    `str`, so it prints, joins and serialises as before, plus `translated()` for a page."""

    def __new__(cls, message: str, **params):
        text = super().__new__(cls, message % params if params else message)
        text.message = message
        text.params = params
        return text

    def translated(self) -> str:
        return gettext(self.message, **_translated_params(self.params))


class _Joined(str):
    def __new__(cls, parts, separator: str):
        text = super().__new__(cls, separator.join(map(str, parts)))
        text.parts = list(parts)
        text.separator = separator
        return text

    def translated(self) -> str:
        parts = (p.translated() if hasattr(p, "translated") else p for p in self.parts)
        return self.separator.join(parts)


def joined(parts, separator: str = "; ") -> str:
    """Several messages shown as one, each translated where shown."""
    return _Joined(parts, separator)


class Refusal(ValueError):
    """A refused request whose message is fit to show to the person who made it."""

    def __init__(self, message: str, **params):
        if isinstance(message, Message) and not params:  # a message written elsewhere
            message, params = message.message, message.params
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params

    def translated(self) -> str:
        """The message in the current request's language, with its values filled in."""
        if hasattr(self.message, "translated"):  # several messages `joined` into one
            return self.message.translated()
        return gettext(self.message, **_translated_params(self.params))

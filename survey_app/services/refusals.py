"""The one exception a service raises when its rules refuse an action: an HTTP
`status` for the pages and a translated `message` that reads in the page's
language, or in the default language (Vietnamese) in a command."""
from __future__ import annotations


class Refused(Exception):
    """An action the rules do not allow (`status`, a translated `message`)."""

    def __init__(self, status: int, message):
        super().__init__(status)
        self.status, self.message = status, message

    def __str__(self) -> str:
        """The message in the page's language, or the default language in a command."""
        from flask import current_app, has_request_context
        from flask_babel import force_locale

        if has_request_context():
            return str(self.message)
        with force_locale(current_app.config["BABEL_DEFAULT_LOCALE"]):
            return str(self.message)

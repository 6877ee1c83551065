"""The browser session cookie, kept away from the signed API."""

from flask.sessions import SecureCookieSessionInterface

API_PREFIX = "/api/"


class ShopSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except under /api/: API requests authenticate by their
    signature alone, so a shop cookie a browser sends along is neither read (it cannot lend
    a request anyone's rights) nor answered with a new one, and the API skips the cost of
    verifying and re-signing a cookie on every call."""

    def open_session(self, app, request):
        if request.path.startswith(API_PREFIX):
            return self.null_session_class()
        return super().open_session(app, request)

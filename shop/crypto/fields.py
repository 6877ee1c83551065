"""A model field that keeps its column encrypted while model code reads and writes plain str."""

from peewee import TextField

from .keyring import decrypt, encrypt


class EncryptedField(TextField):
    """A TEXT column holding AES-256-GCM tokens sealed for `purpose` (e.g. "user.email").

    The column cannot be searched, sorted or indexed: each write produces a different token, so
    `Model.email == "x"` silently matches nothing. Store a `blind_index` beside it and query that.
    """

    def __init__(self, purpose: str, **kwargs):
        if not isinstance(purpose, str) or not purpose:
            raise ValueError("EncryptedField needs a purpose such as 'user.email'")
        if kwargs.get("index") or kwargs.get("unique"):
            raise ValueError("an encrypted column cannot be indexed; index its blind index")
        super().__init__(**kwargs)
        self.purpose = purpose

    def db_value(self, value):
        return None if value is None else encrypt(self.purpose, value)

    def python_value(self, value):
        return None if value is None else decrypt(self.purpose, value)

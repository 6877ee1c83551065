"""Why a posting was refused. Every refusal leaves the database as it was."""


class LedgerError(Exception):
    """A posting that would break the ledger's rules: nothing was written."""


class InsufficientFunds(LedgerError):
    """An account that may not go negative does not hold enough for the posting."""

    def __init__(self, code: str, unit: str, delta: int, balance: int | None):
        self.code = code
        self.unit = unit
        self.delta = delta
        self.balance = balance
        super().__init__(
            f"insufficient funds in {code}: holds {balance} {unit}, posting needs {-delta} {unit}"
        )


class IdempotencyConflict(LedgerError):
    """An idempotency key already posted a different transaction: the retry is not a retry."""

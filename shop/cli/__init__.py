"""The operator CLI: `flask --app app shop ...`.

Every command takes `--json` and then prints exactly one JSON object on stdout. Exit codes:
0 done, 1 a check failed, 2 bad input (with `{"error": {"code", "message"}}`).
"""

from shop.api import cli as api_cli  # noqa: F401  (registers `apikey`)
from shop.cli import core, selling  # noqa: F401  (registers the commands)
from shop.cli.base import shop_cli
from shop.levels import cli as levels_cli  # noqa: F401  (registers `levels`, `user set-level`)
from shop.points import cli as points_cli  # noqa: F401  (registers `points`)
from shop.withdrawals import cli as withdrawals_cli  # noqa: F401  (registers `withdrawals`)

__all__ = ["shop_cli"]

"""The one error the rider's wallet reports to the rider, shared by the key store and the wallet.

It lives apart from both because both raise it: the key store for files it cannot read, the
wallet for use cases that cannot run yet. The backend's refusals are `api.RiderApiError`.
"""


class WalletError(Exception):
    """An operating condition the rider can act on, with a stable `code` for messages."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail

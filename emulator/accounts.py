"""API keys and balances.

An :class:`Account` is one API key (secret, optional passphrase). A key is valid on every venue, because the
emulator stands in for several exchanges at once and one demo key pair is the simplest thing for users; each
venue still keeps its own :class:`Wallet` for that key (created on first use with the default balance), as
separate exchanges would. OKX needs the passphrase; venues without one ignore it.

Every key has permissions (:data:`PERMISSIONS`): ``read`` always, ``trade`` to place, cancel and change
settings, ``withdraw``. Each venue refuses writes from a key without ``trade`` with its own answer and
reports the permissions on its own endpoint (Binance ``apiRestrictions``, OKX ``account/config``, Bybit
``query-api``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from emulator.catalogue import reference_level

DEMO_CREDENTIALS: dict[str, tuple[str, str, str | None]] = {
    "binance": ("emulator-binance-demo-key", "emulator-binance-demo-secret", None),
    "okx": ("emulator-okx-demo-key", "emulator-okx-demo-secret", "Emulator-demo-1"),
    "bybit": ("emulator-bybit-demo-key", "emulator-bybit-demo-secret", None),
}

FIXED_DEFAULTS = {
    "BTC": Decimal(10),
    "ETH": Decimal(100),
    "USDT": Decimal(1_000_000),
    "USDC": Decimal(100_000),
}
OTHER_ASSET_VALUE = Decimal(50_000)  # quote value of the default holding of every other listed currency

PERMISSIONS = ("read", "trade", "withdraw")
FULL = frozenset({"read", "trade"})  # what a key may do unless told otherwise (no withdrawals)


def permissions_of(key: str, permissions: Iterable[str] | None = None) -> frozenset[str]:
    """``permissions`` checked and with ``read`` added; ``None`` is ``read`` + ``trade``, except for the
    older shorthand in the key's name: one containing ``readonly`` (or ``read-only``) is read-only, one
    containing ``withdraw`` may also withdraw."""
    if permissions is None:
        lowered = key.lower()
        if "readonly" in lowered or "read-only" in lowered:
            return frozenset({"read"})
        return FULL | {"withdraw"} if "withdraw" in lowered else FULL
    given = {permissions} if isinstance(permissions, str) else set(permissions)
    unknown = given - set(PERMISSIONS)
    if unknown:
        raise ValueError(f"unknown permissions {sorted(unknown)}; known: {list(PERMISSIONS)}")
    return frozenset(given | {"read"})


@dataclass
class Balance:
    free: Decimal = Decimal(0)
    locked: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


class InsufficientBalance(Exception):
    """Raised by :meth:`Wallet.lock` / :meth:`Wallet.debit`; venues map it to their own error."""


@dataclass
class Wallet:
    """Balances of one key on one venue."""

    balances: dict[str, Balance] = field(default_factory=dict)

    def get(self, asset: str) -> Balance:
        return self.balances.setdefault(asset, Balance())

    def lock(self, asset: str, amount: Decimal) -> None:
        balance = self.get(asset)
        if amount > balance.free:
            raise InsufficientBalance(asset)
        balance.free -= amount
        balance.locked += amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        balance = self.get(asset)
        balance.locked -= amount
        balance.free += amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self.get(asset).locked -= amount

    def debit(self, asset: str, amount: Decimal) -> None:
        balance = self.get(asset)
        if amount > balance.free:
            raise InsufficientBalance(asset)
        balance.free -= amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.get(asset).free += amount


def default_balances(assets: set[str]) -> dict[str, Decimal]:
    """10 BTC, 100 ETH, 1,000,000 USDT, 100,000 USDC, and about 50,000 USDT worth of every other asset."""
    result = dict(FIXED_DEFAULTS)
    for asset in assets - result.keys():
        level = reference_level(asset)
        amount = (OTHER_ASSET_VALUE / level).quantize(Decimal(1)) if level > 0 else OTHER_ASSET_VALUE
        result[asset] = max(amount, Decimal(1))
    return result


@dataclass
class Account:
    """One API key. ``balances`` overrides the defaults for every venue (``None``: the defaults);
    ``permissions``: see :func:`permissions_of` (``None``: read and trade)."""

    key: str
    secret: str
    passphrase: str | None = None
    balances: dict[str, Decimal] | None = None
    permissions: frozenset[str] | None = None
    wallets: dict[str, Wallet] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.permissions = permissions_of(self.key, self.permissions)

    @property
    def can_trade(self) -> bool:
        return "trade" in (self.permissions or ())

    @property
    def can_withdraw(self) -> bool:
        return "withdraw" in (self.permissions or ())

    def wallet(self, venue: str, assets: set[str]) -> Wallet:
        wallet = self.wallets.get(venue)
        if wallet is None:
            start = self.balances if self.balances is not None else default_balances(assets)
            wallet = self.wallets[venue] = Wallet({a: Balance(Decimal(v)) for a, v in start.items()})
        return wallet

    @classmethod
    def parse(cls, spec: str) -> Account:
        """Parse the CLI form ``KEY:SECRET[:PASSPHRASE]``."""
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"expected KEY:SECRET[:PASSPHRASE], got {spec!r}")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def demo_accounts() -> list[Account]:
    return [Account(key, secret, passphrase) for key, secret, passphrase in DEMO_CREDENTIALS.values()]

"""API keys and balances.

An :class:`Account` is one API key (secret, optional passphrase). A key is valid on every venue, because the
emulator stands in for several exchanges at once and one demo key pair is the simplest thing for users; each
venue still keeps its own :class:`Wallet` for that key (created on first use with the default balance), as
separate exchanges would. OKX needs the passphrase; venues without one ignore it.
"""

from __future__ import annotations

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
    """One API key. ``balances`` overrides the defaults for every venue (``None``: the defaults)."""

    key: str
    secret: str
    passphrase: str | None = None
    balances: dict[str, Decimal] | None = None
    wallets: dict[str, Wallet] = field(default_factory=dict)

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

"""The venue-neutral engine: instruments, live markets, accounts and spot order matching.

Everything here runs on the server's event loop (single-threaded, no locks). Venue adapters call it with
already-parsed values (``Decimal`` amounts, unified symbols) and turn results and :class:`OrderRejected`
into their own wire format.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from emulator.accounts import Account, InsufficientBalance, Wallet
from emulator.catalogue import Catalogue, Instrument, reference_level
from emulator.market import Market, PriceWalk, Side, rng_for, snap
from emulator.orders import Fill, Order, OrderRejected, OrderType, Reject, Status, TimeInForce
from emulator.stats import Stats


class Clock:
    """Server time. ``offset_ms`` shifts it (clock-skew faults)."""

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_us(self) -> int:
        return time.time_ns() // 1000 + self.offset_ms * 1000

    def now_ms(self) -> int:
        return self.now_us() // 1000


@dataclass
class Ledger:
    """Orders and fills of one key on one venue."""

    orders: dict[int, Order] = field(default_factory=dict)
    fills: list[Fill] = field(default_factory=list)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]


class Engine:
    """Holds all venue state. Create markets with :meth:`add_instruments`, drive time with :meth:`advance`."""

    def __init__(self, seed: int = 0, stats: Stats | None = None, clock: Clock | None = None) -> None:
        self.seed = seed
        self.stats = stats or Stats()
        self.clock = clock or Clock()
        self.started_ms = self.clock.now_ms()
        self.catalogue = Catalogue()
        self.walks: dict[tuple[str, str], PriceWalk] = {}
        self.markets: dict[tuple[str, str], Market] = {}
        self._markets_by_walk: dict[tuple[str, str], list[Market]] = defaultdict(list)
        self._walk_due: dict[tuple[str, str], int] = {}
        self.accounts: dict[str, Account] = {}
        self._ledgers: dict[tuple[str, str], Ledger] = {}
        self._next_order_id: dict[str, int] = {}

    # --- set-up -------------------------------------------------------------------------------------------

    def add_account(self, account: Account) -> Account:
        self.accounts[account.key] = account
        return account

    def add_instruments(self, instruments: list[Instrument]) -> None:
        for instrument in instruments:
            self.catalogue.add(instrument)
            walk_key = (instrument.venue, instrument.base)
            walk = self.walks.get(walk_key)
            if walk is None:
                level = reference_level(instrument.base) / reference_level(instrument.quote)
                walk = self.walks[walk_key] = PriceWalk(level, rng_for(self.seed, *walk_key, "walk"))
                self._walk_due[walk_key] = self.started_ms + walk.next_interval_ms()
            market = Market(instrument, walk, self.seed, self.started_ms)
            self.markets[(instrument.venue, instrument.symbol)] = market
            self._markets_by_walk[walk_key].append(market)

    def market(self, venue: str, symbol: str) -> Market:
        return self.markets[(venue, symbol)]

    def assets(self, venue: str) -> set[str]:
        return {c for i in self.catalogue.of(venue) for c in (i.base, i.quote)}

    def wallet(self, venue: str, key: str) -> Wallet:
        return self.accounts[key].wallet(venue, self.assets(venue))

    def ledger(self, venue: str, key: str) -> Ledger:
        return self._ledgers.setdefault((venue, key), Ledger())

    # --- time ---------------------------------------------------------------------------------------------

    def advance(self, now_ms: int | None = None) -> None:
        """Step every walk whose tick is due (catching up at most a few missed ticks), re-shape its markets
        and fill the resting orders the new prices cross."""
        now_ms = self.clock.now_ms() if now_ms is None else now_ms
        for walk_key, due in self._walk_due.items():
            if due > now_ms:
                continue
            walk = self.walks[walk_key]
            steps = 0
            while due <= now_ms and steps < 5:
                walk.step()
                due += walk.next_interval_ms()
                steps += 1
            self._walk_due[walk_key] = max(due, now_ms + 1)
            if not walk.held:
                self._retick(walk_key, now_ms)

    def _retick(self, walk_key: tuple[str, str], now_ms: int) -> None:
        for market in self._markets_by_walk[walk_key]:
            market.on_tick(now_ms)
            self._match_resting(market, now_ms)

    def set_price(self, venue: str, symbol: str, price: Decimal, hold: bool = False) -> None:
        """Move the walk under ``symbol`` so that market trades at ``price`` now (other markets on the same
        base follow). ``hold=True`` freezes that walk, its books and trade prints until :meth:`release`."""
        market = self.market(venue, symbol)
        walk_key = (venue, market.instrument.base)
        walk = self.walks[walk_key]
        walk.value = float(price) / (1.0 + market.basis())
        walk.held = False
        self._retick(walk_key, self.clock.now_ms())
        walk.held = hold

    def release(self, venue: str, symbol: str) -> None:
        self.walks[(venue, self.market(venue, symbol).instrument.base)].held = False

    # --- orders -------------------------------------------------------------------------------------------

    def next_order_id(self, venue: str) -> int:
        current = self._next_order_id.get(venue)
        if current is None:
            current = rng_for(self.seed, venue, "orders").randint(10**9, 2 * 10**9)
        self._next_order_id[venue] = current + 1
        return current

    def place_order(
        self,
        venue: str,
        key: str,
        symbol: str,
        side: Side,
        type: OrderType,
        *,
        amount: Decimal | None = None,
        price: Decimal | None = None,
        quote_amount: Decimal | None = None,
        client_id: str | None = None,
        time_in_force: TimeInForce = "GTC",
        post_only: bool = False,
        extra: dict | None = None,
    ) -> Order:
        """Validate, lock funds, take liquidity if the order crosses, rest the remainder (GTC limit)."""
        instrument = self.catalogue.get(venue, symbol)
        if instrument is None:
            raise OrderRejected(Reject.UNKNOWN_SYMBOL)
        if instrument.kind != "spot":
            raise OrderRejected(Reject.NOT_TRADABLE, "derivatives trading is not emulated yet")
        market = self.market(venue, symbol)
        ledger = self.ledger(venue, key)
        self._validate(instrument, market, type, side, amount, price, quote_amount)
        if client_id and any(o.client_id == client_id for o in ledger.open_orders()):
            raise OrderRejected(Reject.DUPLICATE_CLIENT_ID)
        now = self.clock.now_ms()
        order_id = self.next_order_id(venue)
        order = Order(
            id=order_id,
            venue=venue,
            key=key,
            symbol=symbol,
            client_id=client_id or f"emu-{order_id}",
            side=side,
            type=type,
            price=price,
            amount=amount,
            quote_amount=quote_amount,
            time_in_force=time_in_force,
            post_only=post_only,
            created_ms=now,
            updated_ms=now,
            extra=extra or {},
        )
        crosses = type == "market" or self._crosses(market, side, price)
        if post_only and crosses:
            raise OrderRejected(Reject.POST_ONLY_WOULD_TAKE)
        if type == "limit" and time_in_force == "FOK" and not self._fillable(market, side, amount, price):
            order.status = Status.EXPIRED
        else:
            self._lock_for(order, instrument, market)
            if crosses:
                self._take(order, instrument, market, now)
            if order.is_open and (type == "market" or time_in_force != "GTC"):
                self._close(order, Status.EXPIRED, now)
        ledger.orders[order.id] = order
        self.stats.order_accepted(venue, key)
        return order

    def check_order(
        self,
        venue: str,
        symbol: str,
        side: Side,
        type: OrderType,
        *,
        amount: Decimal | None = None,
        price: Decimal | None = None,
        quote_amount: Decimal | None = None,
        **_: object,
    ) -> None:
        """Run the filters of :meth:`place_order` without placing anything (venues' "test order")."""
        instrument = self.catalogue.get(venue, symbol)
        if instrument is None:
            raise OrderRejected(Reject.UNKNOWN_SYMBOL)
        self._validate(instrument, self.market(venue, symbol), type, side, amount, price, quote_amount)

    def _validate(
        self,
        instrument: Instrument,
        market: Market,
        type: OrderType,
        side: Side,
        amount: Decimal | None,
        price: Decimal | None,
        quote_amount: Decimal | None,
    ) -> None:
        if price is not None:
            if price % instrument.price_tick:
                raise OrderRejected(Reject.PRICE_PRECISION)
            if price < instrument.min_price or (instrument.max_price and price > instrument.max_price):
                raise OrderRejected(Reject.PRICE_OUT_OF_RANGE)
        if amount is not None:
            if amount % instrument.amount_step:
                raise OrderRejected(Reject.AMOUNT_PRECISION)
            if amount < instrument.min_amount:
                raise OrderRejected(Reject.AMOUNT_TOO_SMALL)
            if amount > instrument.max_amount:
                raise OrderRejected(Reject.AMOUNT_TOO_LARGE)
        notional = quote_amount if quote_amount is not None else (amount or 0) * (price or market.last_price)
        if notional < instrument.min_notional:
            raise OrderRejected(Reject.NOTIONAL_TOO_SMALL)

    def _crosses(self, market: Market, side: Side, price: Decimal | None) -> bool:
        best = market.book.best("sell" if side == "buy" else "buy")
        return (
            best is not None
            and price is not None
            and (price >= best[0] if side == "buy" else price <= best[0])
        )

    def _fillable(self, market: Market, side: Side, amount: Decimal | None, price: Decimal | None) -> bool:
        available = sum(
            (
                q
                for p, q in market.book.levels("sell" if side == "buy" else "buy")
                if price is None or (p <= price if side == "buy" else p >= price)
            ),
            Decimal(0),
        )
        return amount is not None and available >= amount

    def _lock_for(self, order: Order, instrument: Instrument, market: Market) -> None:
        """Lock what the order can spend: quote for buys (at the limit price, or the book's cost for market
        orders), base for sells."""
        if order.side == "buy":
            asset = instrument.quote
            if order.quote_amount is not None:
                need = order.quote_amount
            elif order.price is not None:
                need = order.price * (order.amount or 0)
            else:
                need = market.estimate_cost("buy", order.amount or Decimal(0)) or Decimal("Infinity")
        else:
            asset = instrument.base
            if order.amount is not None:
                need = order.amount
            else:
                need = snap((order.quote_amount or 0) / market.last_price, instrument.amount_step)
        try:
            self.wallet(order.venue, order.key).lock(asset, need)
        except InsufficientBalance:
            raise OrderRejected(Reject.INSUFFICIENT_FUNDS) from None
        order.locked_asset, order.locked = asset, need

    def _take(self, order: Order, instrument: Instrument, market: Market, now: int) -> None:
        if order.amount is None and order.side == "sell":  # sell for a quote amount: cap by the locked base
            fills = market.take("sell", now, qty=order.locked, limit_price=order.price)
            fills = self._trim_to_quote(fills, order.quote_amount or Decimal(0), instrument.amount_step)
        elif order.amount is None:
            fills = market.take("buy", now, quote=order.quote_amount, limit_price=order.price)
        else:
            fills = market.take(order.side, now, qty=order.amount, limit_price=order.price)
        for price, qty in fills:
            self._execute(order, instrument, market, price, qty, maker=False, now=now)

    @staticmethod
    def _trim_to_quote(
        fills: list[tuple[Decimal, Decimal]], quote: Decimal, step: Decimal
    ) -> list[tuple[Decimal, Decimal]]:
        result = []
        for price, qty in fills:
            qty = min(qty, snap(quote / price, step))
            if qty <= 0:
                break
            result.append((price, qty))
            quote -= price * qty
        return result

    def _execute(
        self,
        order: Order,
        instrument: Instrument,
        market: Market,
        price: Decimal,
        qty: Decimal,
        *,
        maker: bool,
        now: int,
    ) -> None:
        """Book one fill: move locked funds, charge the fee in the received asset, print the public trade."""
        wallet = self.wallet(order.venue, order.key)
        rate = instrument.maker if maker else instrument.taker
        if order.side == "buy":
            spent = price * qty
            reserved = order.price * qty if order.price is not None else spent
            reserved = min(reserved, order.locked)
            wallet.spend_locked(instrument.quote, reserved)
            wallet.credit(instrument.quote, reserved - spent)
            wallet.get(instrument.quote).free -= max(Decimal(0), spent - reserved)
            order.locked -= reserved
            fee, fee_asset = qty * rate, instrument.base
            wallet.credit(instrument.base, qty - fee)
        else:
            wallet.spend_locked(instrument.base, qty)
            order.locked -= qty
            fee, fee_asset = price * qty * rate, instrument.quote
            wallet.credit(instrument.quote, price * qty - fee)
        trade = market.record_trade(
            price, qty, ("sell" if order.side == "buy" else "buy") if maker else order.side, now
        )
        fill = Fill(trade.id, order.id, order.symbol, order.side, price, qty, fee, fee_asset, now, maker)
        order.fills.append(fill)
        self.ledger(order.venue, order.key).fills.append(fill)
        order.filled += qty
        order.cost += price * qty
        order.updated_ms = now
        done = order.amount is not None and order.filled >= order.amount
        order.status = Status.FILLED if done else Status.PARTIALLY_FILLED
        if done:
            self._release_lock(order)

    def _release_lock(self, order: Order) -> None:
        if order.locked > 0:
            self.wallet(order.venue, order.key).unlock(order.locked_asset, order.locked)
        order.locked = Decimal(0)

    def _close(self, order: Order, status: Status, now: int) -> None:
        self._release_lock(order)
        order.status = status
        order.updated_ms = now
        if status == Status.EXPIRED and order.type == "market" and order.filled:
            order.status = Status.FILLED if order.amount is None else status

    def _match_resting(self, market: Market, now: int) -> None:
        """Fill resting limit orders the book now crosses, at their own price (maker), limited by the
        liquidity on the other side: big orders fill partially over several ticks."""
        instrument = market.instrument
        for (venue, _key), ledger in self._ledgers.items():
            if venue != instrument.venue:
                continue
            for order in ledger.open_orders(instrument.symbol):
                if order.price is None or not self._crosses(market, order.side, order.price):
                    continue
                taken = market.take(order.side, now, qty=order.remaining, limit_price=order.price)
                qty = sum((q for _, q in taken), Decimal(0))
                if qty > 0:
                    self._execute(order, instrument, market, order.price, qty, maker=True, now=now)

    def find_order(
        self, venue: str, key: str, symbol: str, order_id: int | None = None, client_id: str | None = None
    ) -> Order:
        ledger = self.ledger(venue, key)
        order = (
            ledger.orders.get(order_id)
            if order_id is not None
            else next((o for o in reversed(ledger.orders.values()) if o.client_id == client_id), None)
        )
        if order is None or order.symbol != symbol:
            raise OrderRejected(Reject.ORDER_NOT_FOUND)
        return order

    def cancel_order(
        self, venue: str, key: str, symbol: str, order_id: int | None = None, client_id: str | None = None
    ) -> Order:
        order = self.find_order(venue, key, symbol, order_id, client_id)
        if not order.is_open:
            raise OrderRejected(Reject.ORDER_NOT_OPEN)
        self._close(order, Status.CANCELED, self.clock.now_ms())
        return order

"""The venue-neutral engine: instruments, live markets, accounts, spot and derivatives order matching.

Derivatives (perpetuals, delivery futures; linear and inverse) share the matching of spot orders; their
fills move positions and margin instead of base/quote balances (see :mod:`emulator.positions`). Every
account change is also published as an :class:`~emulator.positions.AccountEvent` to
``account_listeners`` (private WebSocket streams).

Everything here runs on the server's event loop (single-threaded, no locks). Venue adapters call it with
already-parsed values (``Decimal`` amounts, unified symbols) and turn results and :class:`OrderRejected`
into their own wire format.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from emulator.accounts import Account, InsufficientBalance, Wallet
from emulator.catalogue import Catalogue, Instrument, reference_level
from emulator.market import FUNDING_PERIOD_MS, Market, PriceWalk, Side, rng_for, snap
from emulator.orders import Fill, Order, OrderRejected, OrderType, Reject, Status, TimeInForce
from emulator.positions import (
    MAX_LEVERAGE,
    AccountEvent,
    DerivativesAccount,
    MarginMode,
    Position,
    PositionSide,
    TriggerBy,
    average_entry,
    notional,
    pnl,
)
from emulator.stats import Stats

log = logging.getLogger(__name__)


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
        self._derivatives: dict[tuple[str, str], DerivativesAccount] = {}
        self.account_listeners: list[Callable[[AccountEvent], None]] = []
        self._events: list[AccountEvent] = []
        # Funding is applied to open perpetual positions every funding_interval_ms (8 h as on the venues;
        # tests shorten it with set_funding_interval).
        self.funding_interval_ms = FUNDING_PERIOD_MS
        self._next_funding_ms = (self.started_ms // FUNDING_PERIOD_MS + 1) * FUNDING_PERIOD_MS

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

    def derivatives(self, venue: str, key: str) -> DerivativesAccount:
        """Position mode, per-symbol leverage and margin mode, positions and income of one key."""
        return self._derivatives.setdefault((venue, key), DerivativesAccount())

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
        if self.funding_interval_ms and now_ms >= self._next_funding_ms:
            self._next_funding_ms = (now_ms // self.funding_interval_ms + 1) * self.funding_interval_ms
            self.apply_funding(now_ms)
        if self._derivatives:
            self._settle_expired(now_ms)
        self._flush()

    def _retick(self, walk_key: tuple[str, str], now_ms: int) -> None:
        for market in self._markets_by_walk[walk_key]:
            market.on_tick(now_ms)
            self._match_resting(market, now_ms)
            if self._derivatives and market.instrument.contract:
                self._check_triggers(market, now_ms)

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
        self._flush()

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
        reduce_only: bool = False,
        position_side: PositionSide | None = None,
    ) -> Order:
        """Validate, lock funds (spot) or margin (contracts), take liquidity if the order crosses, rest the
        remainder (GTC limit). Contracts: ``amount`` in contracts; ``reduce_only``; ``position_side`` "both"
        (one-way mode, the default) or "long"/"short" (hedge mode: the leg the order opens or closes)."""
        try:
            return self._place_order(
                venue,
                key,
                symbol,
                side,
                type,
                amount=amount,
                price=price,
                quote_amount=quote_amount,
                client_id=client_id,
                time_in_force=time_in_force,
                post_only=post_only,
                extra=extra,
                reduce_only=reduce_only,
                position_side=position_side,
            )
        except OrderRejected:
            self._events.clear()
            raise
        finally:
            self._flush()

    def _place_order(
        self,
        venue: str,
        key: str,
        symbol: str,
        side: Side,
        type: OrderType,
        *,
        amount: Decimal | None,
        price: Decimal | None,
        quote_amount: Decimal | None,
        client_id: str | None,
        time_in_force: TimeInForce,
        post_only: bool,
        extra: dict | None,
        reduce_only: bool,
        position_side: PositionSide | None,
    ) -> Order:
        instrument = self.catalogue.get(venue, symbol)
        if instrument is None:
            raise OrderRejected(Reject.UNKNOWN_SYMBOL)
        if instrument.kind == "option":
            raise OrderRejected(Reject.NOT_TRADABLE, "options trading is not emulated yet")
        if instrument.contract:
            if quote_amount is not None and amount is None:
                raise OrderRejected(Reject.NOT_TRADABLE, "contract orders are sized in contracts")
            hedged = self.derivatives(venue, key).hedged
            if hedged != ((position_side or "both") in ("long", "short")):
                raise OrderRejected(Reject.POSITION_SIDE_INVALID)
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
            reduce_only=reduce_only,
            position_side=position_side or "both",
        )
        crosses = type == "market" or self._crosses(market, side, price)
        if post_only and crosses:
            raise OrderRejected(Reject.POST_ONLY_WOULD_TAKE)
        if type == "limit" and time_in_force == "FOK" and not self._fillable(market, side, amount, price):
            order.status = Status.EXPIRED
            self._order_event(order, "new", None, instrument)
            self._order_event(order, "expired", None, instrument)
        else:
            if instrument.contract:
                self._lock_margin(order, instrument, market)
            else:
                self._lock_for(order, instrument, market)
            self._order_event(order, "new", None, instrument)
            if crosses:
                self._take(order, instrument, market, now)
            if order.is_open and (type == "market" or time_in_force != "GTC"):
                self._close(order, Status.EXPIRED, now)
                self._order_event(order, "expired", None, instrument)
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
        """Book one fill: move locked funds (spot) or the position (contracts), charge the fee, print the
        public trade."""
        wallet = self.wallet(order.venue, order.key)
        rate = instrument.maker if maker else instrument.taker
        realised_before = order.realised_pnl
        if instrument.contract:
            fee, fee_asset = self._settle_contract_fill(order, instrument, price, qty, rate, now)
        elif order.side == "buy":
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
        fill.realised_pnl = order.realised_pnl - realised_before
        order.fills.append(fill)
        self.ledger(order.venue, order.key).fills.append(fill)
        order.filled += qty
        order.cost += price * qty
        order.updated_ms = now
        done = order.amount is not None and order.filled >= order.amount
        order.status = Status.FILLED if done else Status.PARTIALLY_FILLED
        if done:
            self._release_lock(order)
        self._order_event(order, "trade", fill, instrument)

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
        self._order_event(order, "canceled", None, self.catalogue.get(venue, symbol))
        self._flush()
        return order

    # --- derivatives --------------------------------------------------------------------------------------

    def _contract(self, venue: str, symbol: str) -> Instrument:
        instrument = self.catalogue.get(venue, symbol)
        if instrument is None:
            raise OrderRejected(Reject.UNKNOWN_SYMBOL)
        if not instrument.contract or instrument.kind == "option":
            raise OrderRejected(Reject.NOT_TRADABLE, "not a perpetual or delivery future")
        return instrument

    @staticmethod
    def _settle_asset(instrument: Instrument) -> str:
        return instrument.settle or instrument.quote

    def _closable(self, order: Order, instrument: Instrument) -> Decimal:
        """Contracts of the order's position that the order would close (the rest opens)."""
        account = self.derivatives(order.venue, order.key)
        position = account.positions.get((instrument.symbol, order.position_side))  # type: ignore[arg-type]
        if position is None or not position.size:
            return Decimal(0)
        closing = (position.size > 0) != (order.side == "buy")
        return abs(position.size) if closing else Decimal(0)

    def _lock_margin(self, order: Order, instrument: Instrument, market: Market) -> None:
        """Contracts: reduce-only orders must only close; other orders lock the initial margin of the part
        that opens (at the limit price, or the book's average for market orders)."""
        closable = self._closable(order, instrument)
        amount = order.amount or Decimal(0)
        hedge_close = order.position_side != "both" and (
            (order.position_side == "long") != (order.side == "buy")
        )
        if order.reduce_only or hedge_close:
            if not closable or amount > closable:
                raise OrderRejected(Reject.REDUCE_ONLY_REJECTED)
            return
        opening = max(Decimal(0), amount - closable)
        if not opening:
            return
        price = order.price
        if price is None:
            cost = market.estimate_cost(order.side, opening)
            price = cost / opening if cost else market.mark_price
        leverage = self.derivatives(order.venue, order.key).leverage_of(instrument.symbol)
        need = notional(instrument, opening, price) / leverage
        asset = self._settle_asset(instrument)
        try:
            self.wallet(order.venue, order.key).lock(asset, need)
        except InsufficientBalance:
            raise OrderRejected(Reject.INSUFFICIENT_FUNDS) from None
        order.locked_asset, order.locked = asset, need

    def _settle_contract_fill(
        self, order: Order, instrument: Instrument, price: Decimal, qty: Decimal, rate: Decimal, now: int
    ) -> tuple[Decimal, str]:
        """Move the position by one fill: close first (realise PnL, release margin), then open (move the
        order's locked margin into the position, average the entry). Returns (fee, fee asset)."""
        account = self.derivatives(order.venue, order.key)
        wallet = self.wallet(order.venue, order.key)
        asset = self._settle_asset(instrument)
        position = account.position(order.venue, order.key, instrument, order.position_side)  # type: ignore[arg-type]
        sign = Decimal(1) if order.side == "buy" else Decimal(-1)
        closing = (
            min(qty, abs(position.size))
            if position.size and (position.size > 0) != (sign > 0)
            else Decimal(0)
        )
        opening = qty - closing
        if closing:
            direction = Decimal(1) if position.size > 0 else Decimal(-1)
            realised = pnl(instrument, closing * direction, position.entry_price, price)
            released = position.margin * closing / abs(position.size)
            position.size += sign * closing
            if not position.size:
                released = position.margin
                position.entry_price = Decimal(0)
            wallet.unlock(asset, released)
            position.margin -= released
            wallet.credit(asset, realised)
            position.realised_pnl += realised
            order.realised_pnl += realised
            account.record(now, instrument.symbol, "REALIZED_PNL", realised, asset)
        if opening:
            need = notional(instrument, opening, price) / position.leverage
            from_order = min(need, order.locked)
            order.locked -= from_order
            extra = need - from_order
            if extra > 0:
                balance = wallet.get(asset)
                balance.free -= extra
                balance.locked += extra
            position.margin += need
            position.entry_price = average_entry(
                instrument, abs(position.size), position.entry_price, opening, price
            )
            position.size += sign * opening
            if not position.created_ms:
                position.created_ms = now
        fee = notional(instrument, qty, price) * rate
        wallet.get(asset).free -= fee
        account.record(now, instrument.symbol, "COMMISSION", -fee, asset)
        position.updated_ms = now
        if not position.size:
            position.take_profit = position.stop_loss = None
        return fee, asset

    def positions(self, venue: str, key: str, symbol: str | None = None) -> list[Position]:
        """Open positions of one key (one per symbol in one-way mode, up to two in hedge mode)."""
        return self.derivatives(venue, key).open_positions(symbol)

    def set_leverage(
        self, venue: str, key: str, symbol: str, leverage: Decimal, maximum: Decimal = MAX_LEVERAGE
    ) -> Decimal:
        """Leverage of a symbol (both legs). Open positions keep their margin; new fills use the new
        leverage. Raises LEVERAGE_INVALID outside ``1..maximum``."""
        instrument = self._contract(venue, symbol)
        if leverage < 1 or leverage > maximum:
            raise OrderRejected(Reject.LEVERAGE_INVALID)
        account = self.derivatives(venue, key)
        account.leverage[symbol] = leverage
        for position in account.of_symbol(instrument.symbol):
            position.leverage = leverage
        return leverage

    def set_margin_mode(self, venue: str, key: str, symbol: str, mode: MarginMode) -> None:
        """cross/isolated for a symbol. NO_CHANGE if already so (Binance -4046); POSITION_OPEN or
        ORDERS_OPEN while the symbol has a position or open orders."""
        instrument = self._contract(venue, symbol)
        account = self.derivatives(venue, key)
        if account.margin_mode_of(symbol) == mode:
            raise OrderRejected(Reject.NO_CHANGE)
        if account.open_positions(symbol):
            raise OrderRejected(Reject.POSITION_OPEN)
        if self.ledger(venue, key).open_orders(symbol):
            raise OrderRejected(Reject.ORDERS_OPEN)
        account.margin_mode[symbol] = mode
        for position in account.of_symbol(instrument.symbol):
            position.margin_mode = mode

    def set_position_mode(self, venue: str, key: str, hedged: bool) -> None:
        """One-way (False) or hedge (True) mode for the whole account. NO_CHANGE if already so;
        POSITION_OPEN / ORDERS_OPEN while any contract position or order is open."""
        account = self.derivatives(venue, key)
        if account.hedged == hedged:
            raise OrderRejected(Reject.NO_CHANGE)
        if account.open_positions():
            raise OrderRejected(Reject.POSITION_OPEN)
        contracts = {i.symbol for i in self.catalogue.of(venue) if i.contract}
        if any(o.symbol in contracts for o in self.ledger(venue, key).open_orders()):
            raise OrderRejected(Reject.ORDERS_OPEN)
        account.hedged = hedged
        account.positions = {k: p for k, p in account.positions.items() if p.size}

    def adjust_margin(
        self, venue: str, key: str, symbol: str, amount: Decimal, side: PositionSide = "both"
    ) -> Position:
        """Add (``amount > 0``) or remove margin of an isolated position. NO_POSITION, NOT_ISOLATED,
        INSUFFICIENT_FUNDS (adding more than is free) or MARGIN_TOO_LOW (removing below initial margin)."""
        instrument = self._contract(venue, symbol)
        position = self.derivatives(venue, key).positions.get((instrument.symbol, side))
        if position is None or not position.size:
            raise OrderRejected(Reject.NO_POSITION)
        if position.margin_mode != "isolated":
            raise OrderRejected(Reject.NOT_ISOLATED)
        wallet = self.wallet(venue, key)
        asset = position.settle
        if amount > 0:
            try:
                wallet.lock(asset, amount)
            except InsufficientBalance:
                raise OrderRejected(Reject.INSUFFICIENT_FUNDS) from None
        else:
            mark = self.market(venue, symbol).mark_price
            if position.margin + amount < position.initial_margin(mark):
                raise OrderRejected(Reject.MARGIN_TOO_LOW)
            wallet.unlock(asset, -amount)
        position.margin += amount
        position.updated_ms = self.clock.now_ms()
        self._account_changed(venue, key, (asset,), (position,), "margin", symbol)
        self._flush()
        return position

    def set_trading_stop(
        self,
        venue: str,
        key: str,
        symbol: str,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
        side: PositionSide = "both",
        trigger_by: TriggerBy = "mark",
    ) -> Position:
        """Attach take-profit / stop-loss prices to a position (0 clears one, None leaves it). When the
        trigger price (mark by default) crosses one, the whole position is closed with a reduce-only market
        order (``extra["trigger"]`` says which). NO_POSITION without an open position."""
        instrument = self._contract(venue, symbol)
        position = self.derivatives(venue, key).positions.get((instrument.symbol, side))
        if position is None or not position.size:
            raise OrderRejected(Reject.NO_POSITION)
        if take_profit is not None:
            position.take_profit = take_profit or None
        if stop_loss is not None:
            position.stop_loss = stop_loss or None
        position.trigger_by = trigger_by
        position.updated_ms = self.clock.now_ms()
        self._account_changed(venue, key, (), (position,), "trading_stop", symbol)
        self._flush()
        return position

    def _trigger_price(self, market: Market, trigger_by: TriggerBy) -> Decimal:
        if trigger_by == "last":
            return market.last_price
        if trigger_by == "index":
            return market.index_price
        return market.mark_price

    def _check_triggers(self, market: Market, now: int) -> None:
        symbol, venue = market.instrument.symbol, market.instrument.venue
        for (account_venue, key), account in list(self._derivatives.items()):
            if account_venue != venue:
                continue
            for position in account.open_positions(symbol):
                if position.take_profit is None and position.stop_loss is None:
                    continue
                price = self._trigger_price(market, position.trigger_by)
                long = position.size > 0
                hit = None
                if position.take_profit is not None and (
                    price >= position.take_profit if long else price <= position.take_profit
                ):
                    hit = "take_profit"
                elif position.stop_loss is not None and (
                    price <= position.stop_loss if long else price >= position.stop_loss
                ):
                    hit = "stop_loss"
                if hit is None:
                    continue
                position.take_profit = position.stop_loss = None
                try:
                    self._place_order(
                        venue,
                        key,
                        symbol,
                        "sell" if long else "buy",
                        "market",
                        amount=abs(position.size),
                        price=None,
                        quote_amount=None,
                        client_id=None,
                        time_in_force="GTC",
                        post_only=False,
                        extra={"trigger": hit},
                        reduce_only=True,
                        position_side=position.side,
                    )
                except OrderRejected:
                    continue

    def set_funding_interval(self, interval_ms: int) -> int:
        """Apply funding every ``interval_ms`` from now on (0: never automatically); returns the previous
        interval."""
        previous, self.funding_interval_ms = self.funding_interval_ms, interval_ms
        now = self.clock.now_ms()
        self._next_funding_ms = (now // interval_ms + 1) * interval_ms if interval_ms else 2**62
        return previous

    def apply_funding(self, now_ms: int | None = None, venue: str | None = None) -> int:
        """Charge or pay funding on every open perpetual position now, at each market's current rate and
        mark price: longs pay shorts when the rate is positive. Returns the number of payments."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        count = 0
        for (account_venue, key), account in list(self._derivatives.items()):
            if venue is not None and account_venue != venue:
                continue
            changed: list[Position] = []
            assets: set[str] = set()
            for position in account.open_positions():
                if position.instrument.kind != "swap":
                    continue
                market = self.market(account_venue, position.symbol)
                rate = market.funding_rate()
                payment = -position.notional(market.mark_price) * rate * (1 if position.size > 0 else -1)
                self.wallet(account_venue, key).credit(position.settle, payment)
                position.funding += payment
                position.updated_ms = now
                account.record(now, position.symbol, "FUNDING_FEE", payment, position.settle, rate=rate)
                changed.append(position)
                assets.add(position.settle)
                count += 1
            if changed:
                self._account_changed(
                    account_venue, key, tuple(sorted(assets)), tuple(changed), "funding", changed[0].symbol
                )
        self._flush()
        return count

    def _settle_expired(self, now: int) -> None:
        """Delivery futures past expiry: cancel their open orders, close positions at the mark price."""
        for (venue, key), account in list(self._derivatives.items()):
            for position in account.open_positions():
                expiry = position.instrument.expiry_ms
                if position.instrument.kind != "future" or not expiry or expiry > now:
                    continue
                for order in self.ledger(venue, key).open_orders(position.symbol):
                    self._close(order, Status.EXPIRED, now)
                    self._order_event(order, "expired", None, position.instrument)
                price = self.market(venue, position.symbol).mark_price
                realised = position.unrealised_pnl(price)
                wallet = self.wallet(venue, key)
                wallet.unlock(position.settle, position.margin)
                wallet.credit(position.settle, realised)
                account.record(now, position.symbol, "REALIZED_PNL", realised, position.settle)
                position.realised_pnl += realised
                position.size = position.margin = position.entry_price = Decimal(0)
                position.updated_ms = now
                self._account_changed(
                    venue, key, (position.settle,), (position,), "settlement", position.symbol
                )

    # --- account events (private streams) -----------------------------------------------------------------

    def on_account_event(self, listener: Callable[[AccountEvent], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every account change of every key; returns the unsubscriber."""
        self.account_listeners.append(listener)

        def remove() -> None:
            if listener in self.account_listeners:
                self.account_listeners.remove(listener)

        return remove

    def _order_event(
        self, order: Order, exec_type: str, fill: Fill | None, instrument: Instrument | None
    ) -> None:
        if not self.account_listeners:
            return
        now = order.updated_ms or self.clock.now_ms()
        self._events.append(
            AccountEvent(order.venue, order.key, "order", now, "order", order, exec_type, fill)
        )
        if instrument is None:
            return
        if instrument.contract:
            assets: tuple[str, ...] = (self._settle_asset(instrument),)
            positions = tuple(self.derivatives(order.venue, order.key).of_symbol(instrument.symbol))
        else:
            assets, positions = (instrument.base, instrument.quote), ()
        if exec_type == "trade" or order.locked or exec_type in ("canceled", "expired"):
            self._account_changed(
                order.venue, order.key, assets, positions if fill else (), "order", order.symbol
            )

    def _account_changed(
        self,
        venue: str,
        key: str,
        assets: tuple[str, ...],
        positions: tuple[Position, ...],
        reason: str,
        symbol: str = "",
    ) -> None:
        if not self.account_listeners:
            return
        now = self.clock.now_ms()
        if assets:
            self._events.append(
                AccountEvent(venue, key, "balance", now, reason, assets=assets, symbol=symbol)
            )
        if positions:
            self._events.append(
                AccountEvent(venue, key, "position", now, reason, positions=positions, symbol=symbol)
            )

    def _flush(self) -> None:
        events, self._events = self._events, []
        for event in events:
            for listener in list(self.account_listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("account listener failed on %s", event.kind)

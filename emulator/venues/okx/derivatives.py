"""OKX v5 derivatives account endpoints over the engine's positions (``emulator.positions``).

* ``POST /account/set-leverage`` (``lever``, ``mgnMode``, ``instId``, ``posSide``): leverage of an instrument
  and, as CCXT's ``setMarginMode`` uses it, its margin mode.
* ``GET /account/leverage-info``, ``POST /account/set-position-mode`` (``net_mode`` | ``long_short_mode``),
  ``GET /account/positions``, ``POST /account/position/margin-balance``, ``POST /trade/close-position``,
  ``GET /account/bills`` and ``/account/bills-archive`` (funding-fee bills, ``type`` 8).

OKX keeps cross and isolated positions of one instrument apart and chooses per order (``tdMode``); the engine
keeps one margin mode per instrument, so an order or ``set-leverage`` in the other mode switches it while the
instrument has no position and no open order, and is refused (59000) otherwise.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from emulator.catalogue import Instrument
from emulator.orders import OrderRejected, Reject
from emulator.positions import DerivativesAccount, Income, Position
from emulator.venues.okx import shapes
from emulator.venues.okx.instruments import INST_TYPES, VENUE
from emulator.venues.okx.protocol import REJECTIONS, OkxError, choice, empty, num, param_error

if TYPE_CHECKING:
    from emulator.venues.okx.rest import Call, OkxRest

ZERO = Decimal(0)
POS_MODES = {"net_mode": False, "long_short_mode": True}
MGN_MODES = ("cross", "isolated")
FUNDING_BILL_BASE = 700_000_000_000_000_000

# OKX's answers to settings refused by the account's state.
SETTINGS_LOCKED = (
    "59000",
    "Setting failed. Cancel any open orders, close positions, and stop trading bots first.",
)
SETTING_REJECTIONS: dict[Reject, tuple[str, str]] = {
    Reject.POSITION_OPEN: SETTINGS_LOCKED,
    Reject.ORDERS_OPEN: SETTINGS_LOCKED,
    Reject.LEVERAGE_INVALID: ("59102", "Leverage exceeds the maximum leverage. Please adjust the leverage."),
    Reject.NO_POSITION: ("59300", "Margin call failed. Position does not exist."),
    Reject.NOT_ISOLATED: ("59300", "Margin call failed. Position does not exist."),
    Reject.MARGIN_TOO_LOW: ("59301", "Margin adjustment failed for exceeding the max limit."),
    Reject.INSUFFICIENT_FUNDS: ("59200", "Insufficient account balance."),
}


def setting_error(rejected: OrderRejected) -> OkxError:
    code, msg = SETTING_REJECTIONS.get(rejected.reason) or REJECTIONS[rejected.reason]
    return OkxError(code, msg)


def pos_side(position: Position) -> str:
    return "net" if position.side == "both" else position.side


def position_id(key: str, symbol: str, side: str) -> str:
    digest = hashlib.sha256(f"{key}|{symbol}|{side}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big") >> 2)


class OkxDerivatives:
    """Handlers registered by :class:`~emulator.venues.okx.rest.OkxRest` (signed)."""

    def __init__(self, rest: OkxRest) -> None:
        self.rest = rest
        self.engine = rest.engine

    def routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("POST", "/account/set-leverage", self.set_leverage),
            ("GET", "/account/leverage-info", self.leverage_info),
            ("POST", "/account/set-position-mode", self.set_position_mode),
            ("GET", "/account/positions", self.positions),
            ("POST", "/account/position/margin-balance", self.margin_balance),
            ("POST", "/trade/close-position", self.close_position),
            ("GET", "/account/bills", self.bills),
            ("GET", "/account/bills-archive", self.bills),
        ]

    def account(self, key: str) -> DerivativesAccount:
        return self.engine.derivatives(VENUE, key)

    # --- helpers shared with orders ------------------------------------------------------------------------

    def contract(self, inst_id: str) -> Instrument:
        instrument = self.rest.instrument(inst_id)
        if instrument.kind not in ("swap", "future"):
            raise OkxError("51000", "Parameter instId error", status=400)
        return instrument

    def use_margin_mode(self, key: str, instrument: Instrument, mode: str, order: bool = False) -> None:
        """Switch the instrument to ``mode`` unless it is in it. While it has a position or open orders in the
        other mode: 59000 for ``set-leverage``; for an order (``order=True``) 51000 "Parameter tdMode error"
        (OKX would open a second position in that mode; the engine keeps one mode per instrument)."""
        current = self.account(key).margin_mode_of(instrument.symbol)
        if current == mode:
            return
        try:
            self.engine.set_margin_mode(VENUE, key, instrument.symbol, mode)  # type: ignore[arg-type]
        except OrderRejected as rejected:
            if rejected.reason == Reject.NO_CHANGE:
                return
            if order:
                raise OkxError(
                    "51000",
                    f"Parameter tdMode error: {instrument.id} has a {current} position or open orders "
                    f"(the emulator keeps one margin mode per instrument)",
                ) from None
            raise setting_error(rejected) from None

    def order_fields(
        self, key: str, instrument: Instrument, td_mode: str, side_text: str, reduce: bool
    ) -> tuple[dict[str, Any], str]:
        """Engine arguments of a swap/futures order and the ``posSide`` it echoes (spot: none, as sent).

        ``posSide`` rules: net mode takes "net" or nothing, long/short mode needs "long" or "short" (else
        51000 "Parameter posSide error"); reduceOnly only applies in net mode. ``margin_mode`` (tdMode) is
        applied by the caller before placing (:meth:`use_margin_mode`)."""
        if instrument.kind not in ("swap", "future"):
            return {}, side_text
        if td_mode not in MGN_MODES:
            raise param_error("tdMode")
        hedged = self.account(key).hedged
        if hedged and side_text not in ("long", "short"):
            raise param_error("posSide")
        if not hedged and side_text not in ("", "net"):
            raise param_error("posSide")
        fields = {
            "position_side": side_text if hedged else "both",
            "reduce_only": reduce and not hedged,
            "margin_mode": td_mode,
        }
        return fields, side_text or "net"

    # --- settings ------------------------------------------------------------------------------------------

    def set_leverage(self, call: Call) -> Any:
        assert call.key is not None
        body = call.body if isinstance(call.body, dict) else {}
        mode = choice(body.get("mgnMode"), "mgnMode", MGN_MODES)
        raw_lever = str(body.get("lever") if body.get("lever") is not None else "")
        if not raw_lever:
            raise empty("lever")
        try:
            lever = Decimal(raw_lever)
        except ArithmeticError:
            raise param_error("lever") from None
        if not lever.is_finite() or lever < 1:
            raise param_error("lever")
        if not body.get("instId"):
            raise empty("instId")
        instrument = self.contract(str(body["instId"]))
        side = str(body.get("posSide") or "net")
        hedged = self.account(call.key).hedged
        if side not in ("net", "long", "short") or (side != "net" and not hedged):
            raise param_error("posSide")
        if mode == "isolated" and hedged and side == "net":
            raise param_error("posSide")
        self.use_margin_mode(call.key, instrument, mode)
        maximum = Decimal(str(instrument.raw.get("lever") or 125))
        try:
            self.engine.set_leverage(VENUE, call.key, instrument.symbol, lever, maximum)
        except OrderRejected as rejected:
            raise setting_error(rejected) from None
        return [{"instId": instrument.id, "lever": num(lever), "mgnMode": mode, "posSide": side}]

    def leverage_info(self, call: Call) -> Any:
        assert call.key is not None
        mode = choice(call.params.get("mgnMode"), "mgnMode", MGN_MODES)
        ids = [i for i in call.params.get("instId", "").split(",") if i]
        if not ids:
            raise empty("instId")
        account = self.account(call.key)
        result = []
        for inst_id in ids:
            instrument = self.rest.instrument(inst_id)
            lever = num(account.leverage_of(instrument.symbol))
            sides = (
                ("long", "short")
                if account.hedged and mode == "isolated" and instrument.contract
                else ("net",)
            )
            for side in sides:
                result.append(
                    {"ccy": "", "instId": instrument.id, "lever": lever, "mgnMode": mode, "posSide": side}
                )
        return result

    def set_position_mode(self, call: Call) -> Any:
        assert call.key is not None
        body = call.body if isinstance(call.body, dict) else {}
        mode = choice(body.get("posMode"), "posMode", POS_MODES)
        try:
            self.engine.set_position_mode(VENUE, call.key, POS_MODES[mode])
        except OrderRejected as rejected:
            if rejected.reason != Reject.NO_CHANGE:  # OKX answers success when nothing changes
                raise setting_error(rejected) from None
        return [{"posMode": mode}]

    # --- positions ----------------------------------------------------------------------------------------

    def positions(self, call: Call) -> Any:
        assert call.key is not None
        params = call.params
        type_name = params.get("instType", "")
        if type_name and type_name not in ("MARGIN", "SWAP", "FUTURES", "OPTION"):
            raise param_error("instType")
        ids = {i for i in params.get("instId", "").split(",") if i}
        for inst_id in ids:
            self.rest.instrument(inst_id)
        pos_ids = {i for i in params.get("posId", "").split(",") if i}
        now = self.rest.now()
        result = []
        for position in sorted(self.engine.positions(VENUE, call.key), key=lambda p: -p.updated_ms):
            instrument = position.instrument
            if type_name and shapes.inst_type(instrument) != type_name:
                continue
            if ids and instrument.id not in ids:
                continue
            item = self.position_json(call.key, position, now)
            if pos_ids and item["posId"] not in pos_ids:
                continue
            result.append(item)
        return result

    def position_json(self, key: str, position: Position, now: int) -> dict[str, Any]:
        """One ``account/positions`` item (also the ``positions`` channel)."""
        instrument = position.instrument
        market = self.engine.market(VENUE, position.symbol)
        mark, last = market.mark_price, market.last_price
        account = self.account(key)
        size, contracts = position.size, position.contracts
        upl = position.unrealised_pnl(mark)
        upl_last = position.unrealised_pnl(last)
        value = position.notional(mark)
        isolated = position.margin_mode == "isolated"
        imr = value / position.leverage if position.leverage else ZERO
        mmr = position.maintenance_margin(mark)
        settle = position.settle
        wallet = self.engine.wallet(VENUE, key).get(settle)
        collateral = position.margin if isolated else wallet.total
        liq = position.liquidation_price(collateral) if contracts else ZERO
        opened_margin = (
            position.notional(position.entry_price) / position.leverage if position.leverage else ZERO
        )
        equity = (position.margin if isolated else wallet.total) + upl
        if instrument.linear is False:
            notional_usd = contracts * instrument.contract_size
        else:
            notional_usd = value * self.rest.usd_price(settle)
        fees = sum(
            (
                line.amount
                for line in account.income
                if line.symbol == position.symbol
                and line.kind == "COMMISSION"
                and line.ts_ms >= position.created_ms
            ),
            ZERO,
        )
        trade_id = next(
            (
                str(f.trade_id)
                for f in reversed(self.engine.ledger(VENUE, key).fills)
                if f.symbol == position.symbol
            ),
            "",
        )
        eight = Decimal("0.00000001")
        item: dict[str, Any] = {name: "" for name in POSITION_BLANKS}
        item.update(
            adl="1" if contracts else "",
            availPos=shapes.sz(instrument, contracts) if position.side != "both" else "",
            avgPx=shapes.px(instrument, position.entry_price) if contracts else "",
            bePx=shapes.px(instrument, position.entry_price) if contracts else "",
            cTime=str(position.created_ms),
            ccy=settle,
            closeOrderAlgo=[],
            fee=num(fees),
            fundingFee=num(position.funding),
            idxPx=shapes.px(instrument, market.index_price),
            imr="" if isolated else num(imr.quantize(eight)),
            instId=instrument.id,
            instType=shapes.inst_type(instrument),
            last=shapes.px(instrument, last),
            lever=num(position.leverage),
            liqPenalty="0",
            liqPx=num(liq.quantize(Decimal("0.01"))) if liq else "",
            margin=num(position.margin.quantize(eight)) if isolated else "",
            markPx=shapes.px(instrument, mark),
            mgnMode=position.margin_mode,
            mgnRatio=num((equity / mmr).quantize(eight)) if mmr else "",
            mmr=num(mmr.quantize(eight)),
            notionalUsd=num(notional_usd.quantize(eight)),
            pnl=num(position.realised_pnl),
            pos=shapes.sz(instrument, size if position.side == "both" else contracts),
            posId=position_id(key, position.symbol, position.side),
            posSide=pos_side(position),
            realizedPnl=num(position.realised_pnl + fees + position.funding),
            tradeId=trade_id,
            uTime=str(position.updated_ms),
            upl=num(upl.quantize(eight)),
            uplLastPx=num(upl_last.quantize(eight)),
            uplRatio=num((upl / opened_margin).quantize(eight)) if opened_margin else "0",
            uplRatioLastPx=num((upl_last / opened_margin).quantize(eight)) if opened_margin else "0",
            usdPx=num(self.rest.usd_price(settle)) if settle not in ("USDT", "USDC") else "",
            pTime=str(now),
        )
        return item

    def margin_balance(self, call: Call) -> Any:
        assert call.key is not None
        body = call.body if isinstance(call.body, dict) else {}
        for name in ("instId", "posSide", "type", "amt"):
            if body.get(name) in (None, ""):
                raise empty(name)
        instrument = self.contract(str(body["instId"]))
        side, kind = str(body["posSide"]), str(body["type"])
        if side not in ("net", "long", "short"):
            raise param_error("posSide")
        if kind not in ("add", "reduce"):
            raise param_error("type")
        try:
            amount = Decimal(str(body["amt"]))
        except ArithmeticError:
            raise param_error("amt") from None
        if not amount.is_finite() or amount <= 0:
            raise param_error("amt")
        core_side = "both" if side == "net" else side
        try:
            position = self.engine.adjust_margin(
                VENUE,
                call.key,
                instrument.symbol,
                amount if kind == "add" else -amount,
                core_side,  # type: ignore[arg-type]
            )
        except OrderRejected as rejected:
            raise setting_error(rejected) from None
        return [
            {
                "amt": num(amount),
                "ccy": position.settle,
                "instId": instrument.id,
                "leverage": num(position.leverage),
                "posSide": side,
                "type": kind,
            }
        ]

    def close_position(self, call: Call) -> Any:
        """Close a whole position at market (``instId``, ``mgnMode``, ``posSide`` in long/short mode)."""
        assert call.key is not None
        body = call.body if isinstance(call.body, dict) else {}
        if not body.get("instId"):
            raise empty("instId")
        if not body.get("mgnMode"):
            raise empty("mgnMode")
        instrument = self.contract(str(body["instId"]))
        mode = str(body["mgnMode"])
        if mode not in MGN_MODES:
            raise param_error("mgnMode")
        account = self.account(call.key)
        side = str(body.get("posSide") or "net")
        if (account.hedged and side not in ("long", "short")) or (not account.hedged and side != "net"):
            raise param_error("posSide")
        position = account.positions.get((instrument.symbol, "both" if side == "net" else side))  # type: ignore[arg-type]
        if position is None or not position.size or position.margin_mode != mode:
            raise OkxError("51023", "Position does not exist.")
        try:
            self.engine.place_order(
                VENUE,
                call.key,
                instrument.symbol,
                "sell" if position.size > 0 else "buy",
                "market",
                amount=position.contracts,
                client_id=str(body.get("clOrdId") or "") or None,
                extra={
                    "clOrdId": str(body.get("clOrdId") or ""),
                    "tag": str(body.get("tag") or ""),
                    "ordType": "market",
                    "tdMode": mode,
                    "posSide": side,
                    "reduceOnly": True,
                    "lever": num(position.leverage),
                },
                reduce_only=position.side == "both",
                position_side=position.side,
            )
        except OrderRejected as rejected:
            code, msg = REJECTIONS[rejected.reason]
            raise OkxError(code, msg) from None
        return [
            {"clOrdId": str(body.get("clOrdId") or ""), "instId": instrument.id, "posSide": side, "tag": ""}
        ]

    # --- bills ----------------------------------------------------------------------------------------------

    def bills(self, call: Call) -> Any:
        """Funding-fee bills (type 8, subType 173 paid / 174 received), newest first. Trades and transfers are
        not listed as bills here."""
        assert call.key is not None
        params = call.params
        for name in ("type", "subType"):
            if params.get(name) and not params[name].isdigit():
                raise param_error(name)
        if params.get("instType") and params["instType"] not in (*INST_TYPES, "MARGIN"):
            raise param_error("instType")
        if params.get("type") not in (None, "", "8"):
            return []
        window = [self.rest.integer(params, name) for name in ("after", "before", "begin", "end")]
        limit = self.rest.limit(params, 100, 100)
        account = self.account(call.key)
        result = []
        for line in reversed(account.income):
            bill = self.funding_bill(account, line) if line.kind == "FUNDING_FEE" else None
            if bill is not None and self._bill_matches(bill, line, params, window):
                result.append(bill)
                if len(result) >= limit:
                    break
        return result

    def _bill_matches(
        self, bill: dict[str, Any], line: Income, params: dict[str, str], window: list[int | None]
    ) -> bool:
        after, before, begin, end = window
        bill_id = int(bill["billId"])
        if (after is not None and bill_id >= after) or (before is not None and bill_id <= before):
            return False
        if (begin is not None and line.ts_ms < begin) or (end is not None and line.ts_ms > end):
            return False
        instrument = self.engine.catalogue.get(VENUE, line.symbol)
        ct_type = "inverse" if instrument is not None and instrument.linear is False else "linear"
        if params.get("ctType") and params["ctType"] != ct_type:
            return False
        return not any(
            params.get(name) and bill[name] != params[name]
            for name in ("instType", "ccy", "mgnMode", "subType", "instId")
        )

    def funding_bill(self, account: DerivativesAccount, line: Income) -> dict[str, Any] | None:
        instrument = self.engine.catalogue.get(VENUE, line.symbol)
        if instrument is None:
            return None
        return {
            "bal": "",
            "balChg": num(line.amount),
            "billId": str(FUNDING_BILL_BASE + line.id),
            "ccy": line.asset,
            "clOrdId": "",
            "execType": "",
            "fee": "0",
            "fillFwdPx": "",
            "fillIdxPx": "",
            "fillMarkPx": "",
            "fillMarkVol": "",
            "fillPxUsd": "",
            "fillPxVol": "",
            "fillTime": "",
            "from": "",
            "instId": instrument.id,
            "instType": shapes.inst_type(instrument),
            "interest": "0",
            "mgnMode": account.margin_mode_of(line.symbol),
            "notes": f"funding rate {num(line.rate)}" if line.rate is not None else "",
            "ordId": "",
            "pnl": num(line.amount),
            "posBal": "0",
            "posBalChg": "0",
            "px": "",
            "subType": "174" if line.amount > 0 else "173",
            "sz": "",
            "tag": "",
            "to": "",
            "tradeId": "",
            "ts": str(line.ts_ms),
            "type": "8",
        }


# Position fields OKX sends empty for plain (non-margin, non-option) contract positions.
POSITION_BLANKS = (
    "baseBal",
    "baseBorrowed",
    "baseInterest",
    "bizRefId",
    "bizRefType",
    "clSpotInUseAmt",
    "deltaBS",
    "deltaPA",
    "gammaBS",
    "gammaPA",
    "hedgedPos",
    "interest",
    "liab",
    "liabCcy",
    "maxSpotInUseAmt",
    "nonSettleAvgPx",
    "optVal",
    "pendingCloseOrdLiabVal",
    "posCcy",
    "quoteBal",
    "quoteBorrowed",
    "quoteInterest",
    "settledPnl",
    "spotInUseAmt",
    "spotInUseCcy",
    "thetaBS",
    "thetaPA",
    "vegaBS",
    "vegaPA",
)

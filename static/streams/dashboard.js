/* Live dashboard: one WebSocket to /ws/v1/market/ (session auth), reconnecting on its own.
 * Every message is a complete state with a per-stream sequence; anything not newer than
 * what we hold is ignored, so a missed or repeated message never corrupts the view. */
(function () {
  "use strict";

  var cfg = JSON.parse(document.getElementById("dashboard-config").textContent);
  var $ = function (sel, root) { return (root || document).querySelector(sel); };

  var ws = null;
  var wsOpen = false;
  var attempt = 0;
  var lastSeq = {};          // stream label -> last seq applied
  var streamState = {};      // stream label -> live / stale / reconnecting / failed
  var lastUpdateAt = {};     // stream label -> Date.now() of the last state applied
  var subscribed = {};       // stream label -> {exchange, channel, symbol}
  var focus = cfg.focus;
  var chart = null, candles = null, volumes = null;
  var lastCandleTime = 0;

  function label(ex, ch, sym) { return ex + ":" + ch + ":" + sym; }
  function num(v) { return v === null || v === undefined ? null : Number(v); }
  function decimals(v) {
    var s = String(v); var i = s.indexOf(".");
    return i < 0 ? 0 : Math.min(8, s.length - i - 1);
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || v === "") return "—";
    var n = Number(v);
    if (!isFinite(n)) return "—";
    var d = digits !== undefined ? digits : (n >= 1000 ? 2 : n >= 1 ? 4 : 6);
    return n.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  function fmtAge(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return ms + " ms";
    if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
    return Math.round(ms / 60000) + " min";
  }

  /* ------------------------------------------------------------ connection */

  function send(obj) { if (wsOpen) ws.send(JSON.stringify(obj)); }

  function subscribe(exchange, channel, symbol) {
    var key = label(exchange, channel, symbol);
    subscribed[key] = { exchange: exchange, channel: channel, symbol: symbol };
    send({ action: "subscribe", id: key, exchange: exchange, channel: channel, symbol: symbol });
  }
  function unsubscribe(exchange, channel, symbol) {
    var key = label(exchange, channel, symbol);
    delete subscribed[key]; delete lastSeq[key]; delete streamState[key]; delete lastUpdateAt[key];
    send({ action: "unsubscribe", exchange: exchange, channel: channel, symbol: symbol });
  }

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + cfg.wsPath);
    setIndicator();
    ws.onopen = function () {
      wsOpen = true; attempt = 0;
      Object.keys(subscribed).forEach(function (k) {
        var s = subscribed[k];
        send({ action: "subscribe", id: k, exchange: s.exchange, channel: s.channel, symbol: s.symbol });
      });
      setIndicator();
    };
    ws.onmessage = function (ev) { handle(JSON.parse(ev.data)); };
    ws.onclose = function (ev) {
      wsOpen = false;
      if (ev.code === 4401 || ev.code === 4403) { location.href = "/admin/login/?next=/"; return; }
      // Exponential backoff with jitter, so a restarted server is not stampeded.
      var step = Math.min(10000, 500 * Math.pow(2, attempt++));
      setTimeout(connect, step / 2 + Math.random() * step / 2);
      setIndicator();
    };
  }

  function handle(msg) {
    if (msg.type === "update" || msg.type === "snapshot") {
      var key = label(msg.exchange, msg.channel, msg.symbol);
      if (!subscribed[key]) return;
      if (lastSeq[key] !== undefined && msg.seq <= lastSeq[key]) return;
      lastSeq[key] = msg.seq;
      var ageAtReceipt = msg.type === "snapshot" ? (msg.age_ms || 0) : 0;
      lastUpdateAt[key] = Date.now() - ageAtReceipt;
      if (msg.type === "update" || !msg.stale) streamState[key] = "live";
      else if (!streamState[key]) streamState[key] = "stale";
      apply(msg);
      setIndicator();
    } else if (msg.type === "status") {
      streamState[label(msg.exchange, msg.channel, msg.symbol)] = msg.state;
      setIndicator();
    } else if (msg.type === "error") {
      if (msg.error.code === "unknown_symbol" || msg.error.code === "exchange_unavailable") markUnavailable(msg);
      console.warn("stream error", msg.error);
    }
  }

  function apply(msg) {
    if (msg.channel === "ticker") applyTicker(msg);
    else if (msg.channel === "ohlcv") applyCandles(msg);
    else if (msg.channel === "orderbook") applyBook(msg);
    else if (msg.channel === "trades") applyTrades(msg);
  }

  function markUnavailable(msg) {
    // The error echoes the request's id, which is the stream's label.
    var s = subscribed[msg.id];
    if (!s) return;
    delete subscribed[msg.id];
    var row = s.channel === "ticker" ? rowFor(s.exchange, s.symbol) : null;
    if (row) { row.classList.add("unavailable"); $(".age", row).textContent = "n/a"; }
  }

  /* ------------------------------------------------------------ indicator */

  function setIndicator() {
    // reconnecting: our socket is down; stale: a stream reports trouble, or nothing at all
    // arrived lately; live otherwise.
    var el = $("#conn");
    var state, detail = "";
    var now = Date.now();
    var keys = Object.keys(subscribed);
    var bad = keys.filter(function (k) { return streamState[k] && streamState[k] !== "live"; });
    var newest = Math.max.apply(null, keys.map(function (k) { return lastUpdateAt[k] || 0; }).concat([0]));
    if (!wsOpen) state = "reconnecting";
    else if (bad.length) { state = "stale"; detail = bad.length + " of " + keys.length + " streams"; }
    else if (!newest) state = "connecting";
    else if (now - newest > cfg.staleAfterMs) { state = "stale"; detail = "no updates"; }
    else state = "live";
    if (el.dataset.state !== state || $(".conn-detail", el).textContent !== detail) {
      el.className = "conn conn-" + state;
      el.dataset.state = state;
      $(".conn-label", el).textContent = state;
      $(".conn-detail", el).textContent = detail;
    }
  }

  /* ------------------------------------------------------------ watchlist */

  function rowFor(exchange, symbol) {
    return document.querySelector('#watchlist tr[data-exchange="' + exchange + '"][data-symbol="' + symbol + '"]');
  }

  function flash(td, dir) {
    td.classList.remove("flash-up", "flash-down");
    void td.offsetWidth; // restart the animation
    td.classList.add(dir > 0 ? "flash-up" : "flash-down");
  }

  function setCell(td, value, digits) {
    var text = fmt(value, digits);
    var prev = td.dataset.v;
    if (prev !== undefined && value !== null && Number(value) !== Number(prev)) flash(td, Number(value) - Number(prev));
    if (value !== null && value !== undefined) td.dataset.v = value;
    td.textContent = text;
  }

  function applyTicker(msg) {
    var t = msg.data || {};
    var row = rowFor(msg.exchange, msg.symbol);
    var digits = t.last ? Math.max(decimals(t.last), decimals(t.bid || 0), decimals(t.ask || 0)) : undefined;
    if (row) {
      setCell($(".last", row), t.last, digits);
      setCell($(".bid", row), t.bid, digits);
      setCell($(".ask", row), t.ask, digits);
      var pct = num(t.percentage);
      var chg = $(".chg", row);
      chg.textContent = pct === null ? "—" : (pct >= 0 ? "+" : "") + pct.toFixed(2) + "%";
      chg.className = "chg num " + (pct === null ? "" : pct >= 0 ? "up" : "down");
      row.dataset.last = t.last;
    }
    if (msg.exchange === focus.exchange && msg.symbol === focus.symbol) {
      var last = $("#focus-last");
      var prev = last.dataset.v;
      last.textContent = fmt(t.last, digits);
      if (prev !== undefined && Number(prev) !== Number(t.last)) last.className = "big num " + (Number(t.last) > Number(prev) ? "up" : "down");
      last.dataset.v = t.last;
      var p = num(t.percentage);
      var fc = $("#focus-chg");
      fc.textContent = p === null ? "" : (p >= 0 ? "+" : "") + p.toFixed(2) + "% 24h";
      fc.className = "chg num " + (p === null ? "" : p >= 0 ? "up" : "down");
    }
  }

  function tickAges() {
    var now = Date.now();
    document.querySelectorAll("#watchlist tbody tr").forEach(function (row) {
      var key = label(row.dataset.exchange, "ticker", row.dataset.symbol);
      var td = $(".age", row);
      if (row.classList.contains("unavailable")) return;
      if (lastUpdateAt[key] === undefined) { td.textContent = "—"; return; }
      var age = Math.max(0, now - lastUpdateAt[key]);
      td.textContent = fmtAge(age);
      td.classList.toggle("old", age > cfg.staleAfterMs);
    });
    var bookKey = label(focus.exchange, "orderbook", focus.symbol);
    if (lastUpdateAt[bookKey] !== undefined) $("#book-age").textContent = "updated " + fmtAge(Math.max(0, now - lastUpdateAt[bookKey])) + " ago";
    setIndicator();
  }

  /* ------------------------------------------------------------ chart */

  function makeChart() {
    var el = $("#chart");
    chart = LightweightCharts.createChart(el, {
      autoSize: true,
      layout: { background: { type: "solid", color: "#12161c" }, textColor: "#8a94a3", fontSize: 11 },
      grid: { vertLines: { color: "#1b2129" }, horzLines: { color: "#1b2129" } },
      rightPriceScale: { borderColor: "#232a33" },
      timeScale: { borderColor: "#232a33", timeVisible: true, secondsVisible: false },
      crosshair: { mode: LightweightCharts.CrosshairMode.Normal },
    });
    candles = chart.addCandlestickSeries({
      upColor: "#16c784", downColor: "#ea3943", borderVisible: false,
      wickUpColor: "#16c784", wickDownColor: "#ea3943",
    });
    volumes = chart.addHistogramSeries({ priceFormat: { type: "volume" }, priceScaleId: "" });
    volumes.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
  }

  function toBar(c) {
    return { time: Math.floor(c[0] / 1000), open: +c[1], high: +c[2], low: +c[3], close: +c[4] };
  }
  function toVol(c) {
    return { time: Math.floor(c[0] / 1000), value: +c[5], color: +c[4] >= +c[1] ? "rgba(22,199,132,.4)" : "rgba(234,57,67,.4)" };
  }

  function applyCandles(msg) {
    if (msg.exchange !== focus.exchange || msg.symbol !== focus.symbol || !candles) return;
    var data = msg.data || {};
    var rows = data.candles || [];
    if (!rows.length) return;
    if (data.full || msg.type === "snapshot" || lastCandleTime === 0) {
      candles.setData(rows.map(toBar));
      volumes.setData(rows.map(toVol));
      if (precisionFrom(rows)) candles.applyOptions({ priceFormat: precisionFrom(rows) });
      chart.timeScale().scrollToRealTime();
    } else {
      rows.forEach(function (c) {
        if (Math.floor(c[0] / 1000) >= lastCandleTime) { candles.update(toBar(c)); volumes.update(toVol(c)); }
      });
    }
    lastCandleTime = Math.floor(rows[rows.length - 1][0] / 1000);
  }
  function precisionFrom(rows) {
    var d = decimals(rows[rows.length - 1][4]);
    return { type: "price", precision: d, minMove: Math.pow(10, -d) };
  }

  /* ------------------------------------------------------------ order book and trades */

  function renderSide(el, levels, reverse, maxTotal, digits) {
    var total = 0;
    var rows = levels.map(function (l) { total += +l[1]; return [l[0], l[1], total]; });
    if (reverse) rows.reverse();
    el.innerHTML = rows.map(function (r) {
      var w = maxTotal ? Math.min(100, (r[2] / maxTotal) * 100) : 0;
      return '<div class="lvl"><i class="bar" style="width:' + w.toFixed(1) + '%"></i><span>' + fmt(r[0], digits) +
        "</span><span>" + fmt(r[1], 4) + "</span><span>" + fmt(r[2], 4) + "</span></div>";
    }).join("");
  }

  function applyBook(msg) {
    if (msg.exchange !== focus.exchange || msg.symbol !== focus.symbol) return;
    var depth = 12;
    var bids = (msg.data.bids || []).slice(0, depth), asks = (msg.data.asks || []).slice(0, depth);
    var sum = function (side) { return side.reduce(function (a, l) { return a + +l[1]; }, 0); };
    var maxTotal = Math.max(sum(bids), sum(asks));
    var digits = bids.length ? decimals(bids[0][0]) : undefined;
    renderSide($("#asks"), asks, true, maxTotal, digits);
    renderSide($("#bids"), bids, false, maxTotal, digits);
    if (bids.length && asks.length) {
      var spread = +asks[0][0] - +bids[0][0];
      var mid = (+asks[0][0] + +bids[0][0]) / 2;
      $("#spread").innerHTML = "<span>" + fmt(mid, digits) + "</span><small>spread " + fmt(spread, digits) +
        " (" + ((spread / mid) * 10000).toFixed(1) + " bp)</small>";
    }
  }

  function applyTrades(msg) {
    if (msg.exchange !== focus.exchange || msg.symbol !== focus.symbol) return;
    var trades = (msg.data || []).slice().reverse();
    // Venues trim trailing zeros; show every price with the most decimals among them.
    var priceDigits = trades.reduce(function (d, t) { return Math.max(d, decimals(t.price)); }, 0);
    $("#trades").innerHTML = trades.map(function (t) {
      var time = t.timestamp ? new Date(t.timestamp).toLocaleTimeString("en-GB", { hour12: false }) : "";
      return '<div class="trade ' + (t.side || "") + '"><span>' + fmt(t.price, priceDigits) + "</span><span>" +
        fmt(t.amount, 4) + "</span><span>" + time + "</span></div>";
    }).join("");
  }

  /* ------------------------------------------------------------ focus */

  var FOCUS_CHANNELS = ["ohlcv", "orderbook", "trades"];

  function setFocus(exchange, symbol) {
    if (focus && (focus.exchange !== exchange || focus.symbol !== symbol)) {
      FOCUS_CHANNELS.forEach(function (ch) { unsubscribe(focus.exchange, ch, focus.symbol); });
    }
    focus = { exchange: exchange, symbol: symbol };
    lastCandleTime = 0;
    if (candles) { candles.setData([]); volumes.setData([]); }
    $("#asks").innerHTML = ""; $("#bids").innerHTML = ""; $("#trades").innerHTML = ""; $("#spread").textContent = "—";
    $("#focus-symbol").textContent = symbol;
    $("#focus-venue").textContent = exchange;
    var row = rowFor(exchange, symbol);
    $("#focus-last").textContent = row && row.dataset.last ? fmt(row.dataset.last, decimals(row.dataset.last)) : "—";
    $("#focus-last").dataset.v = row && row.dataset.last ? row.dataset.last : "";
    document.querySelectorAll("#watchlist tbody tr").forEach(function (r) {
      r.classList.toggle("focus", r.dataset.exchange === exchange && r.dataset.symbol === symbol);
    });
    FOCUS_CHANNELS.forEach(function (ch) { subscribe(exchange, ch, symbol); });
    history.replaceState(null, "", "?exchange=" + encodeURIComponent(exchange) + "&symbol=" + encodeURIComponent(symbol));
  }

  /* ------------------------------------------------------------ health */

  function refreshHealth() {
    fetch(cfg.healthUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (rows) {
        var body = $("#health tbody");
        if (!rows.length) { body.innerHTML = '<tr><td class="empty" colspan="6">No streams held yet</td></tr>'; return; }
        body.innerHTML = rows.map(function (s) {
          return "<tr><td class=\"l\">" + s.exchange + " · " + s.channel + " · <b>" + s.symbol + "</b></td>" +
            '<td class="l"><span class="badge badge-' + s.state + '">' + s.state + "</span></td>" +
            '<td class="num">' + fmtAge(s.last_message_age_ms) + '</td><td class="num">' + s.reconnects +
            '</td><td class="num">' + s.messages.toLocaleString() + '</td><td class="num">' +
            (s.watchlisted ? "watchlist" : "") + (s.leases ? (s.watchlisted ? " + " : "") + s.leases : "") + "</td></tr>";
        }).join("");
      })
      .catch(function () { /* shown by the connection indicator */ });
  }

  /* ------------------------------------------------------------ start */

  document.querySelectorAll("#watchlist tbody tr").forEach(function (row) {
    var ex = row.dataset.exchange, sym = row.dataset.symbol;
    subscribed[label(ex, "ticker", sym)] = { exchange: ex, channel: "ticker", symbol: sym };
    var pick = function () { setFocus(ex, sym); };
    row.addEventListener("click", pick);
    row.addEventListener("keydown", function (e) { if (e.key === "Enter") pick(); });
  });
  if (window.LightweightCharts) makeChart();
  setFocus(focus.exchange, focus.symbol);
  connect();
  setInterval(tickAges, 250);
  refreshHealth();
  setInterval(refreshHealth, 2000);
})();

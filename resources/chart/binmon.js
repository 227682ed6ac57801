/*
 * binmon chart page: TradingView Lightweight Charts 5 driven from Python.
 *
 * Python -> page: calls on window.binmon built by binmon/ui/chart/jscall.py (json.dumps'd
 * arguments), sent in batches by binmon/ui/chart/bridge.py once the page has said "ready".
 * Page -> Python: JSON messages through the QWebChannel object "bridge" (one slot, post(str)):
 *   {type: "ready"} | {type: "crosshair"} | {type: "visibleRange"} | {type: "state"} | {type: "error"}
 *
 * Bars arrive as rows [t, open, high, low, close, volume] with t = open time in UTC seconds.
 * Those canonical rows are what the page keeps and reports back; Lightweight Charts only ever
 * sees the display times computed by Zone (see there).
 */
(function () {
  'use strict';

  const LWC = window.LightweightCharts;
  // Identifies this load of the page. Python stamps every batch with the id of the page that
  // said "ready"; a batch sent just before a reload can otherwise run in the new document.
  const LOAD_ID = Date.now().toString(36) + '-' + Math.random().toString(36).slice(2);

  // ------------------------------------------------------------------ channel to Python

  let bridge = null; // the QWebChannel object with slot post(string); null outside Qt

  function post(msg) {
    const text = JSON.stringify(msg);
    if (bridge) bridge.post(text);
    else console.log('binmon (no Qt channel): ' + text);
  }

  /** Report an error once: to Python when connected (it logs at ERROR), else to the console. */
  function fail(err) {
    const message = err && err.stack ? String(err.stack) : String(err);
    if (bridge) post({ type: 'error', message: message });
    else console.error(message);
  }

  window.addEventListener('error', (ev) => fail(ev.error || ev.message));
  window.addEventListener('unhandledrejection', (ev) => fail(ev.reason));

  // ------------------------------------------------------------------ themes (TradingView colours)

  const THEMES = {
    dark: {
      bg: '#131722', text: '#d1d4dc', grid: 'rgba(42, 46, 57, 0.6)', border: '#2a2e39',
      crosshair: '#9598a1', label: '#363a45',
      up: '#089981', down: '#f23645', volUp: 'rgba(8, 153, 129, 0.5)', volDown: 'rgba(242, 54, 69, 0.5)',
    },
    light: {
      bg: '#ffffff', text: '#131722', grid: 'rgba(240, 243, 250, 1)', border: '#e0e3eb',
      crosshair: '#9598a1', label: '#131722',
      up: '#089981', down: '#f23645', volUp: 'rgba(8, 153, 129, 0.5)', volDown: 'rgba(242, 54, 69, 0.5)',
    },
  };

  // ------------------------------------------------------------------ time zone

  /*
   * Lightweight Charts has no time-zone option: it draws every timestamp as if it were UTC.
   * To show zone Z we give it wall-clock times: shown = t + offset_Z(t), so the axis labels,
   * day/month tick weights and the crosshair read local time. Canonical UTC times stay in
   * S.bars and are the only times sent back to Python (crosshair and visible range go through
   * the bar index, never through the shifted time).
   *
   * Offsets come from Intl.DateTimeFormat (IANA zones, "local" = the system zone) and are
   * cached per 15-minute bucket: real transitions fall on quarter hours, and the cache keeps a
   * 100k-bar reshift to a few thousand Intl calls.
   *
   * A fold (clocks going back) would make shown times go backwards, which the chart forbids;
   * there, a bar's shown time is pushed to one second after the previous bar's. The axis labels
   * of that one repeated hour are compressed; the legend and crosshair label stay exact because
   * they format the canonical time in the zone.
   */
  const Zone = {
    name: 'UTC',
    dtf: null, // formatToParts of wall clock, for offsets (null for UTC and local)
    cache: new Map(),
    labelFmt: null,

    set(name) {
      let dtf = null;
      if (name !== 'UTC' && name !== 'local') {
        // Throws RangeError for an unknown zone: the caller keeps the previous zone.
        dtf = new Intl.DateTimeFormat('en-US', {
          timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
          hour: 'numeric', minute: 'numeric', second: 'numeric',
        });
      }
      this.name = name;
      this.dtf = dtf;
      this.cache = new Map();
      this.labelFmt = labelFormatter(name === 'local' ? undefined : name);
    },

    /** Seconds east of UTC in this zone at the UTC instant t (seconds). */
    offset(t) {
      if (this.name === 'UTC') return 0;
      const key = Math.floor(t / 900);
      let off = this.cache.get(key);
      if (off === undefined) {
        off = this.compute(key * 900);
        this.cache.set(key, off);
      }
      return off;
    },

    compute(t) {
      if (this.name === 'local') return -new Date(t * 1000).getTimezoneOffset() * 60;
      const p = {};
      for (const part of this.dtf.formatToParts(new Date(t * 1000))) p[part.type] = part.value;
      const wall = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) / 1000;
      return wall - t;
    },

    /** The crosshair / legend text of the canonical UTC time t. */
    label(t) {
      return this.labelFmt(t);
    },
  };

  function labelFormatter(timeZone) {
    const fmt = new Intl.DateTimeFormat('en-GB', {
      timeZone: timeZone, hourCycle: 'h23', weekday: 'short', day: '2-digit', month: 'short',
      year: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    return (t) => {
      const p = {};
      for (const part of fmt.formatToParts(new Date(t * 1000))) p[part.type] = part.value;
      const date = `${p.weekday} ${p.day} ${p.month} '${p.year}`;
      const iv = S.interval;
      if (/[dwM]$/.test(iv)) return date;
      return `${date} ${p.hour}:${p.minute}` + (/s$/.test(iv) ? `:${p.second}` : '');
    };
  }

  // ------------------------------------------------------------------ state

  const S = {
    maxBars: 20000,
    bars: [], // canonical rows [t, o, h, l, c, v], t strictly increasing (UTC seconds)
    shown: [], // display time of each row (Zone), strictly increasing
    symbol: '',
    interval: '',
    precision: 2,
    minMove: 0.01,
    theme: 'dark',
    message: null,
    hover: -1, // bar index under the crosshair, -1 when none
    fresh: true, // no bars shown since setSymbol: the next full redraw resets zoom and scroll
    calls: 0,
    recent: [], // names of the last calls, for tests of ordering
    timing: {}, // ms spent in the last full redraw (diagnostics, benchmarks)
  };

  let chart = null;
  let candles = null;
  let volumes = null;
  const el = {};

  // ------------------------------------------------------------------ bars -> series

  function checkRow(row) {
    if (!Array.isArray(row) || row.length !== 6) throw new Error('bar must be [t,o,h,l,c,v]: ' + JSON.stringify(row));
    for (const x of row) if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error('bad bar value in ' + JSON.stringify(row));
  }

  function checkRows(rows) {
    if (!Array.isArray(rows)) throw new Error('bars must be an array');
    for (let i = 0; i < rows.length; i++) {
      checkRow(rows[i]);
      if (i && rows[i][0] <= rows[i - 1][0]) throw new Error(`bars not strictly increasing at index ${i}`);
    }
  }

  /** Display time for a bar at t following a bar shown at prev (see Zone). */
  function shownAfter(t, prev) {
    const s = t + Zone.offset(t);
    return s > prev ? s : prev + 1;
  }

  function reshift() {
    const n = S.bars.length;
    S.shown = new Array(n);
    let prev = -Infinity;
    for (let i = 0; i < n; i++) prev = S.shown[i] = shownAfter(S.bars[i][0], prev);
  }

  function candlePoint(i) {
    const b = S.bars[i];
    return { time: S.shown[i], open: b[1], high: b[2], low: b[3], close: b[4] };
  }

  function volumePoint(i) {
    const b = S.bars[i];
    const th = THEMES[S.theme];
    return { time: S.shown[i], value: b[5], color: b[4] >= b[1] ? th.volUp : th.volDown };
  }

  /** Hand every bar to the chart again (setData): loads, reloads, trims, zone and theme changes. */
  function redraw() {
    const t0 = performance.now();
    reshift();
    const n = S.bars.length;
    const c = new Array(n);
    const v = new Array(n);
    for (let i = 0; i < n; i++) {
      c[i] = candlePoint(i);
      v[i] = volumePoint(i);
    }
    const t1 = performance.now();
    candles.setData(c);
    volumes.setData(v);
    if (S.fresh && n) {
      // First bars of a symbol (setBars, a reload, or a prepend onto nothing): default zoom,
      // newest bars in view.
      S.fresh = false;
      chart.timeScale().resetTimeScale();
    }
    if (S.hover >= n) S.hover = -1;
    renderLegend();
    scheduleEvents();
    S.timing.build = t1 - t0;
    S.timing.setData = performance.now() - t1;
  }

  // ------------------------------------------------------------------ legend and message

  function formatVolume(v) {
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + 'B';
    if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (a >= 1e3) return (v / 1e3).toFixed(2) + 'K';
    return String(+v.toFixed(a >= 1 ? 2 : 8));
  }

  function span(text, cls) {
    const s = document.createElement('span');
    s.textContent = text;
    if (cls) s.className = cls;
    return s;
  }

  function renderLegend() {
    el.symbol.textContent = S.symbol ? `${S.symbol} · ${S.interval}` : '';
    const n = S.bars.length;
    const i = S.hover >= 0 && S.hover < n ? S.hover : n - 1;
    el.values.replaceChildren();
    if (i < 0) {
      el.time.textContent = '';
      return;
    }
    const b = S.bars[i];
    const fmt = candles.priceFormatter();
    const dir = b[4] >= b[1] ? 'up' : 'down';
    // Change against the previous close, as TradingView's legend does (the open for bar 0).
    const base = i > 0 ? S.bars[i - 1][4] : b[1];
    const diff = b[4] - base;
    const pct = base ? (diff / base) * 100 : 0;
    const sign = diff > 0 ? '+' : diff < 0 ? '\u2212' : '';
    el.time.textContent = Zone.label(b[0]);
    for (const [label, value] of [['O', b[1]], ['H', b[2]], ['L', b[3]], ['C', b[4]]]) {
      el.values.append(span(label, 'label'), span(fmt.format(value), dir));
    }
    el.values.append(
      span(`${sign}${fmt.format(Math.abs(diff))} (${sign}${Math.abs(pct).toFixed(2)}%)`, dir),
      span('V', 'label'),
      span(formatVolume(b[5]), dir),
    );
  }

  // ------------------------------------------------------------------ events to Python

  // Crosshair and range changes fire per mouse move / per scroll step; they are sent at most
  // once per animation frame, and only when they changed.
  let eventsPending = false;
  let sentHover = null;
  let sentRange = '';

  function scheduleEvents() {
    if (eventsPending) return;
    eventsPending = true;
    requestAnimationFrame(sendEvents);
  }

  function sendEvents() {
    eventsPending = false;
    const n = S.bars.length;
    const hoverTime = S.hover >= 0 && S.hover < n ? S.bars[S.hover][0] : null;
    if (hoverTime !== sentHover) {
      sentHover = hoverTime;
      post({ type: 'crosshair', time: hoverTime });
    }
    const r = chart.timeScale().getVisibleLogicalRange();
    if (!r || !n) return;
    const first = Math.min(n - 1, Math.max(0, Math.ceil(r.from)));
    const last = Math.min(n - 1, Math.max(0, Math.floor(r.to)));
    const msg = {
      type: 'visibleRange', fromTime: S.bars[first][0], toTime: S.bars[last][0],
      barsBefore: first, from: r.from, to: r.to, count: n,
    };
    const key = `${msg.fromTime}/${msg.toTime}/${first}/${n}`;
    if (key !== sentRange) {
      sentRange = key;
      post(msg);
    }
  }

  // ------------------------------------------------------------------ the API Python calls

  function trim() {
    const excess = S.bars.length - S.maxBars;
    if (excess > 0) S.bars.splice(0, excess);
    return excess > 0;
  }

  const api = {
    /** Settings that outlive a symbol: {maxBars}. */
    configure(opts) {
      if (opts.maxBars !== undefined) {
        if (!(opts.maxBars >= 1)) throw new Error('maxBars must be >= 1');
        S.maxBars = opts.maxBars;
        if (trim()) redraw();
      }
    },

    /** Show a new instrument: clears the bars; price format from its tick size. */
    setSymbol(sym) {
      S.symbol = sym.symbol;
      S.interval = sym.interval;
      S.precision = sym.precision;
      S.minMove = sym.minMove;
      S.bars = [];
      S.hover = -1;
      S.fresh = true;
      candles.applyOptions({ priceFormat: { type: 'price', precision: sym.precision, minMove: sym.minMove } });
      chart.applyOptions({ timeScale: { timeVisible: !/[dwM]$/.test(sym.interval), secondsVisible: /s$/.test(sym.interval) } });
      redraw();
    },

    /** Replace all bars (newest maxBars kept). */
    setBars(rows) {
      const t0 = performance.now();
      checkRows(rows);
      S.timing.check = performance.now() - t0;
      S.bars = rows.length > S.maxBars ? rows.slice(rows.length - S.maxBars) : rows;
      redraw();
    },

    /** Older bars on the left; only as many as fit under maxBars (the newest of them). */
    prependBars(rows) {
      checkRows(rows);
      if (!S.bars.length) return api.setBars(rows);
      if (rows.length && rows[rows.length - 1][0] >= S.bars[0][0]) throw new Error('prepended bars must be older than the first bar');
      const room = S.maxBars - S.bars.length;
      if (room <= 0 || !rows.length) return;
      // setData keeps the distance of the view from the last bar, so the view stays put.
      S.bars = rows.slice(Math.max(0, rows.length - room)).concat(S.bars);
      redraw();
    },

    /**
     * Live updates: ["u", t, o, h, l, c, v] is series.update (replace when t equals the last
     * bar, append when newer, an error when older - as Lightweight Charts does); ["reload", rows]
     * is setData. Plain updates go to series.update; a reload or a trim in the batch means one
     * setData at the end instead.
     */
    apply(ops) {
      let full = false;
      const updates = [];
      try {
        for (const op of ops) {
          if (op[0] === 'reload') {
            checkRows(op[1]);
            S.bars = op[1].slice(Math.max(0, op[1].length - S.maxBars));
            full = true;
            updates.length = 0;
            continue;
          }
          if (op[0] !== 'u') throw new Error('unknown op ' + JSON.stringify(op[0]));
          const row = op.slice(1);
          checkRow(row);
          const n = S.bars.length;
          const lastT = n ? S.bars[n - 1][0] : -Infinity;
          if (row[0] < lastT) throw new Error(`update at ${row[0]} is older than the last bar at ${lastT}`);
          if (row[0] === lastT) {
            S.bars[n - 1] = row;
          } else {
            S.bars.push(row);
            S.shown.push(shownAfter(row[0], n ? S.shown[n - 1] : -Infinity));
            if (S.bars.length > S.maxBars) full = true;
          }
          if (!full) updates.push(S.bars.length - 1);
        }
      } finally {
        // Even when an op fails, the chart shows exactly what S holds.
        if (full) {
          trim();
          redraw();
        } else {
          for (const i of updates) {
            candles.update(candlePoint(i));
            volumes.update(volumePoint(i));
          }
          renderLegend();
          scheduleEvents();
        }
      }
    },

    setMessage(text) {
      S.message = text === null || text === undefined || text === '' ? null : String(text);
      el.message.textContent = S.message || '';
      el.message.hidden = S.message === null;
    },

    setTheme(name) {
      const th = THEMES[name];
      if (!th) throw new Error('unknown theme ' + JSON.stringify(name));
      S.theme = name;
      document.body.dataset.theme = name;
      const line = { color: th.crosshair, labelBackgroundColor: th.label };
      chart.applyOptions({
        layout: { background: { type: LWC.ColorType.Solid, color: th.bg }, textColor: th.text },
        grid: { vertLines: { color: th.grid }, horzLines: { color: th.grid } },
        crosshair: { vertLine: line, horzLine: line },
        rightPriceScale: { borderColor: th.border },
        timeScale: { borderColor: th.border },
      });
      candles.applyOptions({
        upColor: th.up, downColor: th.down, borderUpColor: th.up, borderDownColor: th.down,
        wickUpColor: th.up, wickDownColor: th.down,
      });
      redraw(); // volume colours are per bar
    },

    setTimezone(name) {
      Zone.set(name);
      redraw();
    },

    /** Post {type: "state", event: "drawn", token} once the current data has been painted. */
    whenDrawn(token) {
      // The chart paints in its own animation-frame callback, registered by the data change
      // that preceded this call; the second frame starts after that paint is done.
      requestAnimationFrame(() => requestAnimationFrame(() => {
        post({ type: 'state', event: 'drawn', token: token, count: S.bars.length });
      }));
    },

    /** Everything tests and diagnostics read back, as a JSON string (Qt drops objects). */
    stateJSON() {
      const n = S.bars.length;
      const cdata = candles.data();
      const last = n ? S.bars[n - 1] : null;
      const fmt = candles.priceFormatter();
      return JSON.stringify({
        count: n, maxBars: S.maxBars, first: n ? S.bars[0] : null, last: last,
        shownFirst: n ? S.shown[0] : null, shownLast: n ? S.shown[n - 1] : null,
        seriesCount: cdata.length, volumeCount: volumes.data().length,
        seriesLastTime: cdata.length ? cdata[cdata.length - 1].time : null,
        symbol: S.symbol, interval: S.interval, precision: S.precision, minMove: S.minMove,
        priceFormat: candles.options().priceFormat, priceLabel: last ? fmt.format(last[4]) : null,
        theme: S.theme, background: chart.options().layout.background.color,
        textColor: chart.options().layout.textColor, upColor: candles.options().upColor,
        timezone: Zone.name, timeLabelLast: last ? chart.options().localization.timeFormatter(S.shown[n - 1]) : null,
        legend: Array.from(el.legend.querySelectorAll('span'), (x) => x.textContent).filter(Boolean).join(' '),
        message: S.message, messageVisible: !el.message.hidden,
        series: chart.panes().flatMap((p, pane) => p.getSeries().map((s) => ({
          type: s.seriesType(), pane: pane, priceScaleId: s.options().priceScaleId || 'right',
        }))),
        attributionLogo: chart.options().layout.attributionLogo,
        visible: chart.timeScale().getVisibleLogicalRange(),
        lwcVersion: LWC.version(), calls: S.calls, recent: S.recent.slice(), timing: S.timing,
      });
    },

    /** All canonical bars as JSON (tests compare them with what Python sent). */
    barsJSON() {
      return JSON.stringify(S.bars);
    },

    /** [t, shown time, crosshair label] of bars first..last-1, as JSON (tests of the zone shift). */
    labelsJSON(first, last) {
      const fmt = chart.options().localization.timeFormatter;
      const out = [];
      for (let i = Math.max(0, first); i < Math.min(last, S.bars.length); i++) out.push([S.bars[i][0], S.shown[i], fmt(S.shown[i])]);
      return JSON.stringify(out);
    },

    /** Show bars from..to (logical indices, fractions allowed), as a user scrolling there would. */
    setVisibleRange(from, to) {
      chart.timeScale().setVisibleLogicalRange({ from: from, to: to });
    },

    /** Post n {type: "state", event: "echo", i} messages (a self-test of the channel). */
    echo(n) {
      for (let i = 0; i < n; i++) post({ type: 'state', event: 'echo', i: i });
    },

    /** Report an exception from a batch (bridge.py wraps every call with it). */
    fail: fail,
  };

  // Count and name each call, so tests can check what arrived and in which order.
  const binmon = {};
  for (const [name, fn] of Object.entries(api)) {
    binmon[name] = function () {
      if (!/JSON$/.test(name) && name !== 'fail') {
        S.calls++;
        S.recent.push(name);
        if (S.recent.length > 64) S.recent.shift();
      }
      return fn.apply(null, arguments);
    };
  }
  binmon.loadId = LOAD_ID;
  window.binmon = binmon;

  // ------------------------------------------------------------------ start

  function start() {
    el.legend = document.getElementById('legend');
    el.symbol = document.getElementById('lg-symbol');
    el.time = document.getElementById('lg-time');
    el.values = document.getElementById('lg-values');
    el.message = document.getElementById('message');

    chart = LWC.createChart(document.getElementById('chart'), {
      autoSize: true,
      // Apache-2.0 licence of Lightweight Charts: the TradingView attribution must stay visible.
      layout: { attributionLogo: true, fontSize: 12 },
      crosshair: { mode: LWC.CrosshairMode.Normal },
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.25 } },
      timeScale: { rightOffset: 8, timeVisible: true, secondsVisible: false },
      localization: {
        // The crosshair's time label: through the bar index back to the canonical time, so it
        // is exact even inside a DST fold; the zone's wall clock for whitespace past the data.
        timeFormatter: (shown) => {
          const i = indexOfShown(shown);
          return Zone.label(i >= 0 ? S.bars[i][0] : shown - Zone.offset(shown));
        },
      },
    });
    candles = chart.addSeries(LWC.CandlestickSeries, { priceLineVisible: true, lastValueVisible: true }, 0);
    // Volume: an overlay scale in the bottom fifth of the main pane, like TradingView.
    volumes = chart.addSeries(LWC.HistogramSeries, {
      priceScaleId: 'volume', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false,
    }, 0);
    volumes.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });

    chart.subscribeCrosshairMove((p) => {
      S.hover = p.time !== undefined && p.logical !== undefined ? Math.round(p.logical) : -1;
      renderLegend();
      scheduleEvents();
    });
    chart.timeScale().subscribeVisibleLogicalRangeChange(scheduleEvents);

    Zone.set('UTC');
    api.setTheme('dark');

    if (window.qt && window.qt.webChannelTransport && window.QWebChannel) {
      new QWebChannel(window.qt.webChannelTransport, (channel) => {
        bridge = channel.objects.bridge;
        post({ type: 'ready', loadId: LOAD_ID, lwcVersion: LWC.version() });
      });
    } else {
      console.info('binmon: no Qt web channel; running stand-alone');
    }
  }

  function indexOfShown(shown) {
    let lo = 0;
    let hi = S.shown.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (S.shown[mid] < shown) lo = mid + 1;
      else if (S.shown[mid] > shown) hi = mid - 1;
      else return mid;
    }
    return -1;
  }

  try {
    start();
  } catch (err) {
    fail(err);
  }
})();

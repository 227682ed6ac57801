/*
 * bm-chart.js - the Lightweight Charts side: chart and series creation, themes (TradingView
 * colours), the window of bars (at most S.maxBars, checked like series.update) and the
 * operations that change it: configure, setSymbol, setBars, prependBars, apply, setTheme,
 * setTimezone. bm-api.js exposes these to Python as window.binmon.*; they are kept here with
 * redraw() because each one must leave the series showing exactly what S holds.
 * Loaded after bm-state.js, bm-bridge.js and bm-format.js; see bm-state.js for the order.
 */
(function () {
  'use strict';

  const BM = window.binmonPage;
  const { LWC, S, Zone, shownAfter, reshift, indexOfShown, renderLegend, scheduleEvents } = BM;

  // ------------------------------------------------------------------ themes (TradingView colours)

  const THEMES = {
    dark: {
      bg: '#131722', text: '#d1d4dc', grid: 'rgba(42, 46, 57, 0.6)', border: '#2a2e39',
      crosshair: '#9598a1', label: '#363a45', guide: 'rgba(149, 152, 161, 0.75)',
      up: '#089981', down: '#f23645', volUp: 'rgba(8, 153, 129, 0.5)', volDown: 'rgba(242, 54, 69, 0.5)',
    },
    light: {
      bg: '#ffffff', text: '#131722', grid: 'rgba(240, 243, 250, 1)', border: '#e0e3eb',
      crosshair: '#9598a1', label: '#131722', guide: 'rgba(106, 109, 120, 0.75)',
      up: '#089981', down: '#f23645', volUp: 'rgba(8, 153, 129, 0.5)', volDown: 'rgba(242, 54, 69, 0.5)',
    },
  };

  // ------------------------------------------------------------------ chart and series

  /** Make the chart, the candle and volume series (BM.chart, BM.candles, BM.volumes). */
  function createChart(container) {
    const chart = LWC.createChart(container, {
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
    BM.chart = chart;
    BM.candles = chart.addSeries(LWC.CandlestickSeries, { priceLineVisible: true, lastValueVisible: true }, 0);
    // Volume: an overlay scale in the bottom fifth of the main pane, like TradingView.
    BM.volumes = chart.addSeries(LWC.HistogramSeries, {
      priceScaleId: 'volume', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false,
    }, 0);
    BM.volumes.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });

    chart.subscribeCrosshairMove((p) => {
      S.hover = p.time !== undefined && p.logical !== undefined ? Math.round(p.logical) : -1;
      // The price under the cursor, for "Add alert at <price>" (only over the candles' pane).
      const y = p.point && !p.paneIndex ? BM.candles.coordinateToPrice(p.point.y) : null;
      S.hoverPrice = typeof y === 'number' && Number.isFinite(y) ? y : null;
      renderLegend();
      scheduleEvents();
    });
    chart.timeScale().subscribeVisibleLogicalRangeChange(scheduleEvents);
  }

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
    BM.candles.setData(c);
    BM.volumes.setData(v);
    const t2 = performance.now();
    BM.indRedraw(); // indicators follow the bars (bm-indicators.js)
    S.timing.indicators = performance.now() - t2;
    if (S.fresh && n) {
      // First bars of a symbol (setBars, a reload, or a prepend onto nothing): default zoom,
      // newest bars in view.
      S.fresh = false;
      BM.chart.timeScale().resetTimeScale();
    }
    if (S.hover >= n) S.hover = -1;
    renderLegend();
    scheduleEvents();
    S.timing.build = t1 - t0;
    S.timing.setData = t2 - t1;
  }

  function trim() {
    const excess = S.bars.length - S.maxBars;
    if (excess > 0) S.bars.splice(0, excess);
    return excess > 0;
  }

  // ------------------------------------------------------------------ operations (window.binmon.*)

  /** Settings that outlive a symbol: {maxBars}. */
  function configure(opts) {
    if (opts.maxBars !== undefined) {
      if (!(opts.maxBars >= 1)) throw new Error('maxBars must be >= 1');
      S.maxBars = opts.maxBars;
      if (trim()) redraw();
    }
  }

  /** Show a new instrument: clears the bars; price format from its tick size. */
  function setSymbol(sym) {
    S.symbol = sym.symbol;
    S.interval = sym.interval;
    S.precision = sym.precision;
    S.minMove = sym.minMove;
    S.bars = [];
    S.hover = -1;
    S.fresh = true;
    BM.candles.applyOptions({ priceFormat: { type: 'price', precision: sym.precision, minMove: sym.minMove } });
    BM.chart.applyOptions({ timeScale: { timeVisible: !/[dwM]$/.test(sym.interval), secondsVisible: /s$/.test(sym.interval) } });
    redraw();
  }

  /** Replace all bars (newest maxBars kept). */
  function setBars(rows) {
    const t0 = performance.now();
    checkRows(rows);
    S.timing.check = performance.now() - t0;
    S.bars = rows.length > S.maxBars ? rows.slice(rows.length - S.maxBars) : rows;
    redraw();
  }

  /** Older bars on the left; only as many as fit under maxBars (the newest of them). `indicators`:
   * optional {id: rows} of indicator values for them, drawn in the same redraw. */
  function prependBars(rows, indicators) {
    checkRows(rows);
    if (!S.bars.length) {
      BM.indMerge(indicators);
      return setBars(rows);
    }
    if (rows.length && rows[rows.length - 1][0] >= S.bars[0][0]) throw new Error('prepended bars must be older than the first bar');
    const room = S.maxBars - S.bars.length;
    if (room <= 0 || !rows.length) return;
    // setData keeps the distance of the view from the last bar, so the view stays put.
    S.bars = rows.slice(Math.max(0, rows.length - room)).concat(S.bars);
    BM.indMerge(indicators);
    redraw();
  }

  /**
   * Live updates: ["u", t, o, h, l, c, v] is series.update (replace when t equals the last
   * bar, append when newer, an error when older - as Lightweight Charts does); ["reload", rows]
   * is setData; ["i", id, t, v...] an indicator value (bm-indicators.js; Python puts them after
   * the bar ops). Plain updates go to series.update; a reload or a trim in the batch means one
   * setData at the end instead.
   */
  function apply(ops) {
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
        if (op[0] === 'i') {
          BM.indOp(op); // ["i", id, t, v...]: an indicator value (bm-indicators.js)
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
          BM.candles.update(candlePoint(i));
          BM.volumes.update(volumePoint(i));
        }
        BM.indFlush();
        renderLegend();
        scheduleEvents();
      }
    }
  }

  function setTheme(name) {
    const th = THEMES[name];
    if (!th) throw new Error('unknown theme ' + JSON.stringify(name));
    S.theme = name;
    document.body.dataset.theme = name;
    const line = { color: th.crosshair, labelBackgroundColor: th.label };
    BM.chart.applyOptions({
      layout: {
        background: { type: LWC.ColorType.Solid, color: th.bg }, textColor: th.text,
        panes: { separatorColor: th.border, separatorHoverColor: th.grid },
      },
      grid: { vertLines: { color: th.grid }, horzLines: { color: th.grid } },
      crosshair: { vertLine: line, horzLine: line },
      rightPriceScale: { borderColor: th.border },
      timeScale: { borderColor: th.border },
    });
    BM.candles.applyOptions({
      upColor: th.up, downColor: th.down, borderUpColor: th.up, borderDownColor: th.down,
      wickUpColor: th.up, wickDownColor: th.down,
    });
    redraw(); // volume colours are per bar
  }

  function setTimezone(name) {
    Zone.set(name);
    redraw();
  }

  Object.assign(BM, {
    THEMES, createChart, configure, setSymbol, setBars, prependBars, apply, setTheme, setTimezone,
  });
})();

/*
 * bm-api.js - window.binmon, the only object Python calls (binmon/ui/chart/jscall.py builds the
 * calls, bridge.py batches them and guards each batch with binmon.loadId), the diagnostics
 * tests and benchmarks read back (whenDrawn, stateJSON, barsJSON, labelsJSON, ...), and the
 * page's start-up. Loaded last of the bm-*.js files (see bm-state.js): it wires together what
 * the others defined, then says "ready" to Python.
 */
(function () {
  'use strict';

  const BM = window.binmonPage;
  const { LWC, S, el, Zone, post, fail } = BM;

  const api = {
    configure: BM.configure,
    setSymbol: BM.setSymbol,
    setBars: BM.setBars,
    prependBars: BM.prependBars,
    apply: BM.apply,

    setMessage(text) {
      S.message = text === null || text === undefined || text === '' ? null : String(text);
      el.message.textContent = S.message || '';
      el.message.hidden = S.message === null;
    },

    setTheme: BM.setTheme,
    setTimezone: BM.setTimezone,

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
      const { chart, candles, volumes } = BM;
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
      const fmt = BM.chart.options().localization.timeFormatter;
      const out = [];
      for (let i = Math.max(0, first); i < Math.min(last, S.bars.length); i++) out.push([S.bars[i][0], S.shown[i], fmt(S.shown[i])]);
      return JSON.stringify(out);
    },

    /** Show bars from..to (logical indices, fractions allowed), as a user scrolling there would. */
    setVisibleRange(from, to) {
      BM.chart.timeScale().setVisibleLogicalRange({ from: from, to: to });
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
  binmon.loadId = BM.LOAD_ID;
  window.binmon = binmon;

  // ------------------------------------------------------------------ start

  function start() {
    // A bm-*.js file that did not load or run leaves a hole here: say which, not a TypeError later.
    const missing = Object.keys(api).filter((name) => typeof api[name] !== 'function');
    if (missing.length) throw new Error('chart page incomplete (a bm-*.js file failed?): no ' + missing.join(', '));

    el.legend = document.getElementById('legend');
    el.symbol = document.getElementById('lg-symbol');
    el.time = document.getElementById('lg-time');
    el.values = document.getElementById('lg-values');
    el.message = document.getElementById('message');

    BM.createChart(document.getElementById('chart'));

    Zone.set('UTC');
    api.setTheme('dark'); // not counted in S.calls: Python did not call it
    BM.connect(); // "ready": Python starts sending
  }

  try {
    start();
  } catch (err) {
    fail(err);
  }
})();

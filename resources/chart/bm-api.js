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

    // Indicators (bm-indicators.js); live values go through apply as ["i", id, t, v...].
    setIndicator: BM.setIndicator,
    removeIndicator: BM.removeIndicator,
    setIndicatorVisible: BM.setIndicatorVisible,
    prependIndicator: BM.prependIndicator,

    // Alert levels as price lines (bm-alerts.js).
    setPriceLines: BM.setPriceLines,
    priceLinesJSON: BM.priceLinesJSON,

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
        indicators: Array.from(BM.IND.values(), indicatorState),
        panes: chart.panes().map((p) => ({ height: p.getHeight(), stretch: p.getStretchFactor() })),
        separatorColor: chart.options().layout.panes.separatorColor,
        visible: chart.timeScale().getVisibleLogicalRange(),
        lwcVersion: LWC.version(), calls: S.calls, recent: S.recent.slice(), timing: S.timing,
      });
    },

    /** An indicator's rows [t, v...] for the bars held, as JSON ("null" when there is no such indicator). */
    indicatorJSON(id) {
      const ind = BM.IND.get(id);
      return JSON.stringify(ind ? indicatorRows(ind) : null);
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

  /** [t, v...] of every bar held that has values for the indicator (canonical times). */
  function indicatorRows(ind) {
    const out = [];
    const at = BM.indReader(ind);
    for (const b of S.bars) {
      const v = at(b[0]);
      if (v) out.push(v);
    }
    return out;
  }

  /** True when every series shows exactly the indicator's values, at its bars' display times. */
  function indicatorDrawn(ind) {
    return ind.series.every((s, k) => {
      if (!s) return true;
      const data = s.data();
      const at = BM.indReader(ind);
      let j = 0;
      for (let i = 0; i < S.bars.length; i++) {
        const v = at(S.bars[i][0]);
        if (!v || v[k + 1] === null) continue;
        const p = data[j++];
        if (!p || p.time !== S.shown[i] || p.value !== v[k + 1]) return false;
      }
      return j === data.length;
    });
  }

  function indicatorState(ind) {
    const rows = indicatorRows(ind);
    const series = ind.series.filter(Boolean);
    const data = series.length ? series[0].data() : [];
    const n = S.bars.length;
    const line = BM.indShown(ind) ? BM.indicatorLine(ind, S.hover >= 0 && S.hover < n ? S.hover : n - 1) : null;
    return {
      id: ind.desc.id, title: ind.desc.title, pane: BM.indPane(ind), visible: BM.indShown(ind),
      series: series.length, points: rows.length, last: rows.length ? rows[rows.length - 1] : null,
      seriesPoints: series.map((s) => s.data().length), seriesVisible: series.map((s) => s.options().visible),
      shownFirst: data.length ? data[0].time : null, shownLast: data.length ? data[data.length - 1].time : null,
      colors: series.map((s) => s.options().color), precision: ind.fmt.precision,
      markers: ind.marks ? ind.marks.markers().length : 0,
      guides: ind.lines.map((l) => ({ price: l.options().price, color: l.options().color, visible: l.options().lineVisible })),
      legend: line ? Array.from(line.children, (x) => x.textContent).join(' ') : null,
      drawnMatches: indicatorDrawn(ind),
    };
  }

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
    el.ind = document.getElementById('lg-ind');
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

/*
 * bm-indicators.js - indicators drawn from the values Python computed (binmon/ui/chart/indicators.py
 * is the model of this file): one series per output (LineSeries, HistogramSeries coloured by sign)
 * in the indicator's pane, "markers" outputs as arrows on the candles, guide lines as dashed price
 * lines, and the operations setIndicator / removeIndicator / setIndicatorVisible /
 * prependIndicator plus the hooks bm-chart.js calls: indOp (["i", id, t, v...] in binmon.apply),
 * indFlush (after live updates), indRedraw (after every full redraw), indMerge (prependBars).
 * Values are kept per bar time (vals: Map t -> row [t, v...]) and only for bars held: each series has one
 * point per bar (whitespace where there is no value) at the bar's display time S.shown[i], so the
 * zone shift, trims and prepends follow the bars. Their legend lines are drawn by bm-format.js,
 * their diagnostics by bm-api.js. Loaded after bm-chart.js (see bm-state.js).
 *   setIndicator(desc, rows): desc = {id, title, pane: "price" | "own" | n, outputs: [{name, kind,
 *     color, negColor, width, visible, text, position}], guides, visible, precision, at?} (see
 *     draw_arg in indicators.py); rows = [[t, v1, ...]] (null: no value), or that as JSON text.
 */
(function () {
  'use strict';

  const BM = window.binmonPage;
  const { LWC, S } = BM;

  const KINDS = ['line', 'dashed', 'dotted', 'points', 'histogram', 'markers'];
  const LINE_STYLE = { line: 0, dotted: 1, dashed: 2, points: 0 }; // LWC.LineStyle values
  const NEG = '#ef5350';
  // id -> {desc, vals, series: [api|null per output], lines (guides), marks (markers plugin), mk (its
  // markers), dirty (times of live values not drawn yet), drawn (bars in the series)}
  const I = new Map();
  let paneCount = 1;

  // ------------------------------------------------------------------ checks and values

  function find(id) {
    if (!I.has(id)) throw new Error('no indicator ' + JSON.stringify(id));
    return I.get(id);
  }

  /** Rows [t, v...] into ind.vals; whole series come as JSON text (parsed here, much faster than a literal). */
  function store(ind, rows) {
    if (typeof rows === 'string') rows = JSON.parse(rows);
    if (!Array.isArray(rows)) throw new Error('indicator rows must be an array');
    const w = ind.desc.outputs.length + 1;
    for (const r of rows) {
      if (!Array.isArray(r) || r.length !== w || typeof r[0] !== 'number') throw new Error(`indicator ${ind.desc.id}: row must be [t, ${w - 1} values]: ${JSON.stringify(r)}`);
      for (let k = 1; k < w; k++) if (r[k] !== null && typeof r[k] !== 'number') throw new Error('bad indicator value in ' + JSON.stringify(r));
      ind.vals.set(r[0], r);
    }
  }

  /** Index of the bar opening at t (canonical seconds), -1 when none; live updates hit the last bars. */
  function barIndex(t) {
    for (let i = S.bars.length - 1; i >= 0; i--) if (S.bars[i][0] <= t) return S.bars[i][0] === t ? i : -1;
    return -1;
  }

  const shown = (ind) => ind.desc.visible !== false;
  const showMarks = (ind) => ind.marks && ind.marks.setMarkers(shown(ind) ? ind.mk : []);
  const paneOf = (ind) => { const s = ind.series.find(Boolean); return s ? s.getPane().paneIndex() : 0; };

  /** The chart point of output o at display time `time` (whitespace where there is no value). */
  function point(o, x, time) {
    if (x === null || x === undefined) return { time };
    if (o.kind !== 'histogram') return { time, value: x };
    return { time, value: x, color: x >= 0 ? o.color : o.negColor || NEG };
  }

  /** Markers of bars from..n-1 (one per markers output whose value is not 0). */
  function marksFrom(ind, from) {
    const out = [];
    for (let i = from; i < S.bars.length; i++) {
      const v = ind.vals.get(S.bars[i][0]);
      if (v) ind.desc.outputs.forEach((o, k) => {
        const x = v[k + 1];
        if (o.kind !== 'markers' || !x || o.visible === false) return;
        const below = o.position === 'below' || (o.position !== 'above' && x > 0);
        out.push({ time: S.shown[i], position: below ? 'belowBar' : 'aboveBar', shape: below ? 'arrowUp' : 'arrowDown',
          color: x > 0 ? o.color : o.negColor || NEG, text: o.text || '' });
      });
    }
    return out;
  }

  // ------------------------------------------------------------------ series

  function priceFormat(ind, pane) {
    let p = ind.desc.precision;
    if (p === null || p === undefined) {
      if (pane === 0) return { type: 'price', precision: S.precision, minMove: S.minMove };
      let m = 0; // about 4 significant digits of the largest value: RSI 2 decimals, MACD of XRPETH 8
      for (const v of ind.vals.values()) for (let k = 1; k < v.length; k++) if (v[k] !== null && Math.abs(v[k]) > m) m = Math.abs(v[k]);
      p = m > 0 ? Math.min(10, Math.max(2, 3 - Math.floor(Math.log10(m)))) : 2;
    }
    return { type: 'price', precision: p, minMove: Math.pow(10, -p) };
  }

  function seriesOptions(ind, o) {
    const base = { visible: shown(ind) && o.visible !== false, color: o.color, priceFormat: ind.fmt,
      priceLineVisible: false, lastValueVisible: true };
    if (o.kind === 'histogram') return Object.assign(base, { base: 0 });
    return Object.assign(base, { lineWidth: o.width || 1, lineStyle: LINE_STYLE[o.kind], lineVisible: o.kind !== 'points',
      pointMarkersVisible: o.kind === 'points', crosshairMarkerVisible: o.kind !== 'points' });
  }

  /** Autoscale that keeps the guide lines in view (RSI 30 / 70 even while RSI stays between them). */
  const withGuides = (guides) => (base) => {
    const a = base();
    if (a && a.priceRange) a.priceRange = { minValue: Math.min(a.priceRange.minValue, ...guides), maxValue: Math.max(a.priceRange.maxValue, ...guides) };
    return a;
  };

  /** Pane for a new version of an indicator: the old one's when the desc asks the same (a restyle). */
  function targetPane(desc, old) {
    const n = BM.chart.panes().length;
    const p = desc.pane;
    if (Number.isInteger(desc.at)) return Math.min(desc.at, n); // a layout restored after a reload
    if (old && old.series.some(Boolean) && JSON.stringify(old.desc.pane) === JSON.stringify(p)) return paneOf(old);
    if (p === 'price' || p === 0) return 0;
    if (Number.isInteger(p) && p > 0) return Math.min(p, n);
    if (p === 'own') return n;
    throw new Error(`indicator ${desc.id}: bad pane ${JSON.stringify(p)}`);
  }

  function create(ind, pane) {
    const d = ind.desc;
    ind.fmt = priceFormat(ind, pane);
    for (const o of d.outputs) {
      if (o.kind === 'markers') { ind.series.push(null); continue; }
      const opts = seriesOptions(ind, o);
      if (pane !== 0 && d.guides && d.guides.length) opts.autoscaleInfoProvider = withGuides(d.guides);
      const s = BM.chart.addSeries(o.kind === 'histogram' ? LWC.HistogramSeries : LWC.LineSeries, opts, pane);
      pane = s.getPane().paneIndex(); // a new pane was made for the first output: the others join it
      // Room at the top of an indicator pane for its legend line (drawn over the plot).
      if (pane !== 0) s.priceScale().applyOptions({ scaleMargins: { top: 0.2, bottom: 0.08 } });
      ind.series.push(s);
    }
    const host = ind.series.find((s, k) => s && d.outputs[k].visible !== false) || ind.series.find(Boolean);
    ind.lines = host ? (d.guides || []).map((g) => host.createPriceLine({ price: g, color: BM.THEMES[S.theme].guide,
      lineWidth: 1, lineStyle: LWC.LineStyle.Dashed, axisLabelVisible: false, lineVisible: shown(ind) })) : [];
    if (d.outputs.some((o) => o.kind === 'markers')) ind.marks = LWC.createSeriesMarkers(BM.candles, []);
  }

  function destroy(ind) {
    if (ind.marks) ind.marks.detach();
    for (const s of ind.series) if (s) BM.chart.removeSeries(s); // its price lines go with it
  }

  /** All points of every series again (new values, bars trimmed / prepended / reshifted). */
  function draw(ind) {
    const n = S.bars.length;
    const outs = ind.desc.outputs;
    const kept = new Map();
    const data = ind.series.map(() => new Array(n));
    for (let i = 0; i < n; i++) {
      const t = S.bars[i][0];
      const v = ind.vals.get(t);
      if (v) kept.set(t, v);
      for (let k = 0; k < outs.length; k++) if (ind.series[k]) data[k][i] = point(outs[k], v ? v[k + 1] : null, S.shown[i]);
    }
    ind.vals = kept; // values of bars no longer held go
    ind.series.forEach((s, k) => s && s.setData(data[k]));
    ind.mk = marksFrom(ind, 0);
    showMarks(ind);
    ind.drawn = n;
    ind.dirty.clear();
  }

  /** Price panes' heights: the candles keep most of the height (only when the number of panes changes, so a user's drag stays). */
  function layout() {
    const panes = BM.chart.panes();
    if (panes.length !== paneCount) {
      paneCount = panes.length;
      panes.forEach((p, k) => p.setStretchFactor(k ? 1 : Math.max(2.5, 1.5 * (panes.length - 1))));
    }
    BM.renderLegend();
    requestAnimationFrame(BM.renderLegend); // a new pane gets its HTML element when first painted
  }

  // ------------------------------------------------------------------ operations (window.binmon.*)

  function setIndicator(desc, rows) {
    const t0 = performance.now();
    const ok = desc && typeof desc.id === 'string' && desc.id && Array.isArray(desc.outputs) && desc.outputs.length;
    if (!ok || !desc.outputs.every((o) => KINDS.includes(o.kind))) throw new Error('bad indicator ' + JSON.stringify(desc));
    const old = I.get(desc.id);
    const ind = { desc, vals: new Map(), series: [], lines: [], marks: null, mk: [], dirty: new Set(), drawn: 0 };
    store(ind, rows);
    create(ind, desc.outputs.some((o) => o.kind !== 'markers') ? targetPane(desc, old) : 0);
    if (old) destroy(old); // after create, so a restyled indicator keeps its pane
    I.set(desc.id, ind); // a replaced id keeps its place in the Map (legend order)
    draw(ind);
    layout();
    S.timing.indicator = performance.now() - t0;
  }

  function removeIndicator(id) {
    destroy(find(id));
    I.delete(id);
    layout();
  }

  function setIndicatorVisible(id, visible) {
    const ind = find(id);
    ind.desc = Object.assign({}, ind.desc, { visible: !!visible });
    ind.series.forEach((s, k) => s && s.applyOptions({ visible: !!visible && ind.desc.outputs[k].visible !== false }));
    for (const line of ind.lines) line.applyOptions({ lineVisible: !!visible });
    showMarks(ind);
    BM.renderLegend();
  }

  /** Values for bars already held (older bars after prependBars): merged, then redrawn. */
  function prependIndicator(id, rows) {
    const ind = find(id);
    store(ind, rows);
    draw(ind);
    BM.renderLegend();
  }

  // ------------------------------------------------------------------ hooks of bm-chart.js

  /** ["i", id, t, v...] of binmon.apply: a value at bar t (dropped when t is no longer held). */
  function indOp(op) {
    const ind = find(op[1]);
    store(ind, [op.slice(2)]);
    ind.dirty.add(op[2]);
  }

  /** After live updates (no full redraw): series.update for new bars and changed values only. */
  function indFlush() {
    const n = S.bars.length;
    for (const ind of I.values()) {
      const redo = new Set(Array.from(ind.dirty, barIndex).filter((i) => i >= 0));
      ind.dirty.clear();
      const from = Math.min(ind.drawn, ...redo);
      // A value older than the last point drawn: redraw. (Rare: values come with their bar. And
      // LWC 5.2.1's historical update overwrites the NEXT point when whitespace becomes a value.)
      if (from < ind.drawn - 1) draw(ind);
      else if (from < n) {
        for (let i = from; i < n; i++) {
          const v = ind.vals.get(S.bars[i][0]);
          ind.series.forEach((s, k) => s && s.update(point(ind.desc.outputs[k], v ? v[k + 1] : null, S.shown[i])));
        }
        ind.drawn = n;
        ind.mk = ind.mk.filter((m) => m.time < S.shown[from]).concat(marksFrom(ind, from));
        showMarks(ind);
      }
    }
  }

  /** After a full redraw (bars loaded, trimmed, prepended; zone, theme or symbol changed). */
  function indRedraw() {
    const th = BM.THEMES[S.theme];
    for (const ind of I.values()) {
      if (paneOf(ind) === 0 && (ind.desc.precision === null || ind.desc.precision === undefined) && ind.fmt.precision !== S.precision) {
        ind.fmt = priceFormat(ind, 0); // overlays follow the symbol's tick size
        for (const s of ind.series) if (s) s.applyOptions({ priceFormat: ind.fmt });
      }
      for (const line of ind.lines) line.applyOptions({ color: th.guide });
      draw(ind);
    }
  }

  /** prependBars' second argument {id: rows}: stored before the redraw that draws them. */
  function indMerge(byId) {
    for (const [id, rows] of Object.entries(byId || {})) store(find(id), rows);
  }

  // For the legend (bm-format.js) and the diagnostics (bm-api.js): read-only.
  Object.assign(BM, {
    IND: I, NEG, indPane: paneOf, indShown: shown,
    setIndicator, removeIndicator, setIndicatorVisible, prependIndicator,
    indOp, indFlush, indRedraw, indMerge,
  });
})();

/*
 * bm-indicators.js - indicators drawn from the values Python computed (binmon/ui/chart/indicators.py
 * is the model of this file): one series per output (LineSeries, HistogramSeries coloured by sign)
 * in the indicator's pane, "markers" outputs as arrows on the candles, guide lines as dashed price
 * lines, and the operations setIndicator / removeIndicator / setIndicatorVisible /
 * prependIndicator plus the hooks bm-chart.js calls: indOp (["i", id, t, v...] in binmon.apply),
 * indFlush (after live updates), indRedraw (after every full redraw), indMerge (prependBars).
 * Values are kept per bar time and only for bars held (ind.vals, see "values" below): each series has
 * one point per bar (whitespace where there is no value) at the bar's display time S.shown[i], so the
 * zone shift, trims and prepends follow the bars. Their legend lines are drawn by bm-format.js,
 * their diagnostics by bm-api.js; both read values with BM.indRow. Loaded after bm-chart.js.
 *   setIndicator(desc, rows): desc = {id, title, pane: "price" | "own" | n, outputs: [{name, kind,
 *     color, negColor, width, visible, text, position}], guides, visible, precision, at?} (see
 *     draw_arg in indicators.py); rows = {n, b64}: n rows as little-endian float64 columns (the n
 *     times in seconds, then each output's n values, NaN: no value) in base64 - how whole series
 *     travel (Columns.arg in indicators.py) - or [[t, v1, ...]] (null: no value), or that as JSON text.
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

  // ------------------------------------------------------------------ values
  // ind.vals = {t: Float64Array (times, increasing), v: [Float64Array per output] (NaN: no value),
  // live: Map t -> row [t, v...]}: whole series as columns (typed arrays: 20k rows decode and
  // draw in a few ms, where a Map of row arrays cost tens), the live values of binmon.apply
  // in a small Map on top (they win over the columns).

  const noValue = (x) => x === null || x === undefined || x !== x; // null or NaN

  function emptyVals(k) {
    return { t: new Float64Array(0), v: Array.from({ length: k }, () => new Float64Array(0)), live: new Map() };
  }

  /** Rows as given to setIndicator & co. -> columns {t, v}, checked. */
  function columns(rows, k, id) {
    const w = k + 1;
    let t, v;
    if (rows && typeof rows === 'object' && !Array.isArray(rows)) {
      const n = rows.n;
      const bin = atob(rows.b64);
      if (!Number.isInteger(n) || n < 0 || bin.length !== n * w * 8) throw new Error(`indicator ${id}: ${bin.length} bytes are not ${n} rows of ${w} float64`);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const all = new Float64Array(bytes.buffer); // little-endian on every platform Chromium runs on
      t = all.subarray(0, n);
      v = Array.from({ length: k }, (_, j) => all.subarray(n * (j + 1), n * (j + 2)));
    } else {
      if (typeof rows === 'string') rows = JSON.parse(rows);
      if (!Array.isArray(rows)) throw new Error('indicator rows must be an array');
      t = new Float64Array(rows.length);
      v = Array.from({ length: k }, () => new Float64Array(rows.length));
      rows.forEach((r, i) => {
        if (!Array.isArray(r) || r.length !== w) throw new Error(`indicator ${id}: row must be [t, ${k} values]: ${JSON.stringify(r)}`);
        t[i] = r[0];
        for (let j = 0; j < k; j++) {
          if (r[j + 1] !== null && typeof r[j + 1] !== 'number') throw new Error('bad indicator value in ' + JSON.stringify(r));
          v[j][i] = r[j + 1] === null ? NaN : r[j + 1];
        }
      });
    }
    for (let i = 0; i < t.length; i++) {
      if (typeof t[i] !== 'number' || !Number.isFinite(t[i]) || (i && t[i] <= t[i - 1])) throw new Error(`indicator ${id}: row times must increase (row ${i})`);
    }
    return { t, v };
  }

  /** First index of sorted `a` whose value is >= x (a.length when none). */
  function lowerBound(a, x) {
    let lo = 0, hi = a.length;
    while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] < x) lo = m + 1; else hi = m; }
    return lo;
  }

  /** Merge rows into ind.vals (the new values win, also over live ones at the same times). */
  function store(ind, rows) {
    const k = ind.desc.outputs.length;
    const add = columns(rows, k, ind.desc.id);
    const vals = ind.vals;
    for (const t of add.t) vals.live.delete(t);
    if (!vals.t.length || !add.t.length) {
      if (add.t.length) Object.assign(vals, add);
      return;
    }
    // Usually older bars (a prepend): a merge of two sorted runs.
    const n = vals.t.length + add.t.length;
    const t = new Float64Array(n);
    const v = Array.from({ length: k }, () => new Float64Array(n));
    let i = 0, j = 0, m = 0;
    while (i < add.t.length || j < vals.t.length) {
      const ta = i < add.t.length ? add.t[i] : Infinity;
      const tb = j < vals.t.length ? vals.t[j] : Infinity;
      const src = ta <= tb ? add : vals;
      const at = ta <= tb ? i : j;
      t[m] = src.t[at];
      for (let c = 0; c < k; c++) v[c][m] = src.v[c][at];
      m++;
      if (ta <= tb) { i++; if (ta === tb) j++; } else j++;
    }
    vals.t = t.subarray(0, m);
    vals.v = v.map((c) => c.subarray(0, m));
  }

  /** A reader of rows [t, v...] (null: no value; undefined when the bar has none) that is fast
   * for increasing t (a walk over the columns), and right for any t. */
  function reader(ind) {
    const { t, v, live } = ind.vals;
    let j = 0;
    return (time) => {
      if (live.size) { const r = live.get(time); if (r) return r; }
      if (j >= t.length || t[j] > time) j = lowerBound(t, time); // went back: search
      while (j < t.length && t[j] < time) j++;
      if (j >= t.length || t[j] !== time) return undefined;
      const row = [time];
      for (const c of v) row.push(noValue(c[j]) ? null : c[j]);
      return row;
    };
  }

  /** Keep only values of bars held (after trims, reloads, a new symbol). */
  function retain(ind) {
    const vals = ind.vals;
    const n = S.bars.length;
    if (!n) { ind.vals = emptyVals(ind.desc.outputs.length); return; }
    const first = S.bars[0][0];
    const lo = lowerBound(vals.t, first);
    const hi = lowerBound(vals.t, S.bars[n - 1][0] + 1);
    if (lo > 0 || hi < vals.t.length) {
      vals.t = vals.t.slice(lo, hi); // slice, not subarray: the dropped part's memory goes
      vals.v = vals.v.map((c) => c.slice(lo, hi));
    }
    for (const t of vals.live.keys()) if (t < first) vals.live.delete(t);
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
    if (noValue(x)) return { time };
    // Histograms: the series' colour is the positive one, so only negative bars carry a colour.
    if (o.kind !== 'histogram' || x >= 0) return { time, value: x };
    return { time, value: x, color: o.negColor || NEG };
  }

  /** Markers of bars from..n-1 (one per markers output whose value is not 0). */
  function marksFrom(ind, from) {
    const out = [];
    const at = reader(ind);
    for (let i = from; i < S.bars.length; i++) {
      const v = at(S.bars[i][0]);
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
      for (const c of ind.vals.v) for (const x of c) if (Math.abs(x) > m) m = Math.abs(x); // NaN: false
      for (const r of ind.vals.live.values()) for (let k = 1; k < r.length; k++) if (r[k] !== null && Math.abs(r[k]) > m) m = Math.abs(r[k]);
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
    retain(ind); // values of bars no longer held go
    const n = S.bars.length;
    const outs = ind.desc.outputs;
    const { t, v, live } = ind.vals;
    const data = ind.series.map(() => new Array(n));
    let j = 0;
    for (let i = 0; i < n; i++) {
      const time = S.bars[i][0];
      while (j < t.length && t[j] < time) j++;
      const row = live.size ? live.get(time) : undefined;
      const hit = j < t.length && t[j] === time;
      for (let k = 0; k < outs.length; k++) {
        if (!ind.series[k]) continue;
        const x = row ? row[k + 1] : hit ? v[k][j] : null;
        data[k][i] = point(outs[k], x, S.shown[i]);
      }
    }
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
    const ind = { desc, vals: emptyVals(desc.outputs.length), series: [], lines: [], marks: null, mk: [], dirty: new Set(), drawn: 0 };
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
    const row = op.slice(2);
    if (row.length !== ind.desc.outputs.length + 1 || typeof row[0] !== 'number' || !row.slice(1).every((x) => x === null || typeof x === 'number')) {
      throw new Error(`indicator ${ind.desc.id}: bad live value ${JSON.stringify(op)}`);
    }
    ind.vals.live.set(row[0], row);
    ind.dirty.add(row[0]);
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
        const at = reader(ind);
        for (let i = from; i < n; i++) {
          const v = at(S.bars[i][0]);
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
    IND: I, NEG, indPane: paneOf, indShown: shown, indRow: (ind, t) => reader(ind)(t), indReader: reader,
    setIndicator, removeIndicator, setIndicatorVisible, prependIndicator,
    indOp, indFlush, indRedraw, indMerge,
  });
})();

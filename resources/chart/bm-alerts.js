/*
 * bm-alerts.js - price-level alerts as horizontal price lines on the candle series
 * (Lightweight Charts' series.createPriceLine). Python sends the whole set for the symbol on
 * screen each time it changes (setPriceLines); the lines live on the candle series, so bar
 * reloads (setData) keep them. Loaded after bm-chart.js, before bm-api.js (see bm-state.js).
 */
(function () {
  'use strict';

  const BM = window.binmonPage;
  const { LWC } = BM;

  // TradingView draws alert levels in its accent orange; a paused alert is grey and dotted.
  const ACTIVE = '#ff9800';
  const PAUSED = '#787b86';

  const LINES = new Map(); // alert id -> {desc, line}

  function checkLine(d) {
    if (!d || typeof d.id !== 'string' || !d.id) throw new Error('price line needs an id: ' + JSON.stringify(d));
    if (typeof d.price !== 'number' || !Number.isFinite(d.price)) throw new Error('bad price line price: ' + JSON.stringify(d));
  }

  function lineOptions(d) {
    const color = d.active === false ? PAUSED : ACTIVE;
    return {
      id: d.id, price: d.price, color: color, lineWidth: 1,
      lineStyle: d.active === false ? LWC.LineStyle.Dotted : LWC.LineStyle.Dashed,
      lineVisible: true, axisLabelVisible: true, title: d.title || '',
      axisLabelColor: color, axisLabelTextColor: '#ffffff',
    };
  }

  /** Replace every alert line with `lines` ([{id, price, title, active}]); [] removes them all. */
  function setPriceLines(lines) {
    if (!Array.isArray(lines)) throw new Error('price lines must be an array');
    lines.forEach(checkLine);
    const keep = new Set(lines.map((d) => d.id));
    for (const [id, item] of LINES) {
      if (!keep.has(id)) {
        BM.candles.removePriceLine(item.line);
        LINES.delete(id);
      }
    }
    for (const d of lines) {
      const item = LINES.get(d.id);
      if (item) item.line.applyOptions(lineOptions(d));
      else LINES.set(d.id, { line: BM.candles.createPriceLine(lineOptions(d)) });
    }
  }

  /** The lines drawn, as the series reports them, as JSON (tests read them back). */
  function priceLinesJSON() {
    return JSON.stringify(Array.from(LINES.entries(), ([id, item]) => {
      const o = item.line.options();
      return { id: id, price: o.price, title: o.title, color: o.color, lineStyle: o.lineStyle };
    }));
  }

  Object.assign(BM, { setPriceLines, priceLinesJSON });
})();

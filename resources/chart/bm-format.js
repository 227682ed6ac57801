/*
 * bm-format.js - how times and values are shown: the time-zone shift (Zone, display times of
 * bars), crosshair / legend time labels, volume figures and the legend itself. Prices are
 * formatted by the candle series' own priceFormatter (precision and minMove set from the tick
 * size by setSymbol, bm-chart.js), indicator values by their series' one. Pure text and arithmetic on the state, no chart calls but
 * priceFormatter. Loaded after bm-state.js; see there for the order of the bm-*.js files.
 */
(function () {
  'use strict';

  const BM = window.binmonPage;
  const S = BM.S;
  const el = BM.el;

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

  /** Display time for a bar at t following a bar shown at prev (see Zone). */
  function shownAfter(t, prev) {
    const s = t + Zone.offset(t);
    return s > prev ? s : prev + 1;
  }

  /** Recompute S.shown from S.bars (every bar's display time in the current zone). */
  function reshift() {
    const n = S.bars.length;
    S.shown = new Array(n);
    let prev = -Infinity;
    for (let i = 0; i < n; i++) prev = S.shown[i] = shownAfter(S.bars[i][0], prev);
  }

  /** Index of the bar displayed at time `shown`, -1 when none (binary search in S.shown). */
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

  // ------------------------------------------------------------------ legend

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

  /** The legend: symbol, time and OHLC / change / volume of the bar under the crosshair (else the
   * last), and a line per visible indicator (indicatorLegend). */
  function renderLegend() {
    el.symbol.textContent = S.symbol ? `${S.symbol} · ${S.interval}` : '';
    const n = S.bars.length;
    const i = S.hover >= 0 && S.hover < n ? S.hover : n - 1;
    indicatorLegend(i);
    el.values.replaceChildren();
    if (i < 0) {
      el.time.textContent = '';
      return;
    }
    const b = S.bars[i];
    const fmt = BM.candles.priceFormatter();
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

  /** An indicator's legend line: its title, then each visible output's value at bar i, in their colours. */
  function indicatorLine(ind, i) {
    const d = ind.desc;
    const v = i >= 0 && i < S.bars.length ? BM.indRow(ind, S.bars[i][0]) : null;
    const row = document.createElement('div');
    row.className = 'row values';
    const cell = (text, color) => {
      const s = span(text);
      s.style.color = color;
      s.style.marginRight = '8px';
      row.append(s);
    };
    cell(d.title, (d.outputs.find((o) => o.visible !== false) || d.outputs[0]).color);
    d.outputs.forEach((o, k) => {
      if (o.visible === false) return;
      const x = v ? v[k + 1] : null;
      const text = x === null ? '\u2205' : ind.series[k] ? ind.series[k].priceFormatter().format(x) : String(x);
      cell(text, o.kind === 'histogram' && x < 0 ? o.negColor || BM.NEG : o.color);
    });
    return row;
  }

  /**
   * Indicator legend lines (bm-indicators.js): those on the price pane under the OHLC line, the
   * others at the top left of their pane, in a box inside the pane's cell (which Lightweight
   * Charts positions relatively), so it moves with the pane when panes are added or resized.
   */
  function indicatorLegend(i) {
    const panes = BM.chart.panes();
    const lines = panes.map(() => []);
    for (const ind of BM.IND.values()) {
      if (BM.indShown(ind)) lines[Math.min(BM.indPane(ind), panes.length - 1)].push(indicatorLine(ind, i));
    }
    el.ind.replaceChildren(...lines[0]);
    for (let p = 1; p < panes.length; p++) {
      const cell = panes[p].getHTMLElement()?.children[1]; // the row: [left axis, pane, right axis]
      if (!cell) continue; // not painted yet: layout() renders again on the next frame
      let box = cell.querySelector(':scope > .bm-pane-legend');
      if (!box) {
        box = document.createElement('div');
        box.className = 'bm-pane-legend';
        box.style.cssText = 'position:absolute;top:4px;left:10px;z-index:3;pointer-events:none;line-height:19px;white-space:nowrap';
        cell.appendChild(box);
      }
      box.replaceChildren(...lines[p]);
    }
  }

  Object.assign(BM, { Zone, shownAfter, reshift, indexOfShown, renderLegend, indicatorLine });
})();

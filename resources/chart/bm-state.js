/*
 * bm-state.js - the chart page's shared namespace and state. Loaded first of the bm-*.js files.
 *
 * The page is split into classic scripts (file:// pages cannot load ES modules in QtWebEngine),
 * run in this order by index.html:
 *   bm-state.js   namespace, load id, bar state S, DOM handles (this file)
 *   bm-bridge.js  QWebChannel handshake, post() to Python, error routing, crosshair/range events
 *   bm-format.js  time zones (display-time shift, labels), legend text
 *   bm-chart.js   chart and series creation, themes, the window of bars and its updates
 *   bm-indicators.js  indicator series in panes, guide lines, markers, their legend lines
 *   bm-alerts.js  alert levels as price lines on the candle series
 *   bm-api.js     window.binmon (what Python calls), diagnostics, start-up
 * They share ONE internal object, window.binmonPage (called BM inside each file); each file
 * adds its functions to it, and later files may copy from it at load time what earlier files
 * defined. Python never touches binmonPage: its only entry point is window.binmon (bm-api.js).
 *
 * Python -> page: calls on window.binmon built by binmon/ui/chart/jscall.py (json.dumps'd
 * arguments), sent in batches by binmon/ui/chart/bridge.py once the page has said "ready".
 * Page -> Python: JSON messages through the QWebChannel object "bridge" (one slot, post(str)):
 *   {type: "ready"} | {type: "crosshair"} | {type: "visibleRange"} | {type: "state"} | {type: "error"}
 *
 * Bars arrive as rows [t, open, high, low, close, volume] with t = open time in UTC seconds.
 * Those canonical rows are what the page keeps and reports back; Lightweight Charts only ever
 * sees the display times computed by Zone (bm-format.js).
 */
(function () {
  'use strict';

  const BM = (window.binmonPage = {});

  BM.LWC = window.LightweightCharts;

  // Identifies this load of the page. Python stamps every batch with the id of the page that
  // said "ready"; a batch sent just before a reload can otherwise run in the new document.
  BM.LOAD_ID = Date.now().toString(36) + '-' + Math.random().toString(36).slice(2);

  BM.S = {
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
    hoverPrice: null, // price under the crosshair in the candles' pane, null when none
    fresh: true, // no bars shown since setSymbol: the next full redraw resets zoom and scroll
    calls: 0,
    recent: [], // names of the last calls, for tests of ordering
    timing: {}, // ms spent in the last full redraw (diagnostics, benchmarks)
  };

  // Legend and message elements, looked up at start-up (bm-api.js).
  BM.el = {};

  // The Lightweight Charts objects, made at start-up by createChart (bm-chart.js). Read them
  // as BM.chart etc. when called, never copy them at load time: they are null until then.
  BM.chart = null;
  BM.candles = null;
  BM.volumes = null;
})();

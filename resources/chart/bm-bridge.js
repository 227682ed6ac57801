/*
 * bm-bridge.js - everything the page sends to Python: the QWebChannel handshake ("ready"),
 * post(), error routing (fail, window error / unhandledrejection), and the throttled
 * crosshair / visible-range events. Kept apart so the one channel out of the page is in one
 * place. Loaded after bm-state.js, before every file that posts; see bm-state.js for the order.
 */
(function () {
  'use strict';

  const BM = window.binmonPage;
  const S = BM.S;

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

  // Registered before the later bm-*.js files run, so an error while loading them is reported too.
  window.addEventListener('error', (ev) => fail(ev.error || ev.message));
  window.addEventListener('unhandledrejection', (ev) => fail(ev.reason));

  /**
   * Open the channel and say "ready" (with this load's id) once it is up. Called last at
   * start-up (bm-api.js), when window.binmon can take calls: Python sends nothing before "ready".
   */
  function connect() {
    if (window.qt && window.qt.webChannelTransport && window.QWebChannel) {
      new QWebChannel(window.qt.webChannelTransport, (channel) => {
        bridge = channel.objects.bridge;
        post({ type: 'ready', loadId: BM.LOAD_ID, lwcVersion: BM.LWC.version() });
      });
    } else {
      console.info('binmon: no Qt web channel; running stand-alone');
    }
  }

  // ------------------------------------------------------------------ events to Python

  // Crosshair and range changes fire per mouse move / per scroll step; they are sent at most
  // once per animation frame, and only when they changed.
  let eventsPending = false;
  let sentHover = null;
  let sentPrice = null;
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
    const price = S.hoverPrice === undefined ? null : S.hoverPrice;
    if (hoverTime !== sentHover || price !== sentPrice) {
      sentHover = hoverTime;
      sentPrice = price;
      post({ type: 'crosshair', time: hoverTime, price: price });
    }
    const r = BM.chart.timeScale().getVisibleLogicalRange();
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

  Object.assign(BM, { post, fail, connect, scheduleEvents });
})();

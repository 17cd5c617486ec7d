// The console's only script: live updates over server-sent events, the climbing ring
// count, and the alert for a missed call or an urgent fax. No framework, no CDN.
(function () {
  "use strict";
  // the live part of a page: 值班台's board, or the spot checks' list
  const board = document.querySelector("[data-live][data-fragment]");
  const cadence = parseFloat(document.body.dataset.cadence || "5") * 1000;
  let offset = 0;            // server clock minus browser clock
  const seenAlerts = new Set();
  let first = true;

  function readOffset(root) {
    const grid = root.querySelector("[data-server-now]");
    if (grid) offset = parseInt(grid.dataset.serverNow, 10) - Date.now();
  }

  function tickRings() {
    const now = Date.now() + offset;
    document.querySelectorAll("[data-ringing-at]").forEach(function (el) {
      const started = parseInt(el.dataset.ringingAt, 10);
      const elapsed = now - started;
      // a PBX clock far from the gateway's: say it rings, never a nonsense count
      el.textContent = elapsed < -2000 || elapsed > 600000 ? "振铃中" : "第" + (Math.max(0, Math.floor(elapsed / cadence)) + 1) + "声";
    });
  }

  function beep() {
    const toggle = document.getElementById("sound-toggle");
    if (!toggle || !toggle.checked) return;
    try {
      const ctx = new (window.AudioContext || window.webkitAudioContext)();
      const osc = ctx.createOscillator();
      osc.frequency.value = 880;
      osc.connect(ctx.destination);
      osc.start();
      osc.stop(ctx.currentTime + 0.4);
    } catch (e) { /* no audio device: the visual alert stays */ }
  }

  function checkAlerts(root) {
    const fresh = [];
    root.querySelectorAll("[data-alert]").forEach(function (el) {
      const key = el.dataset.alert;
      if (!seenAlerts.has(key)) { seenAlerts.add(key); if (!first) fresh.push(el); }
    });
    first = false;
    if (!fresh.length) return;
    const bar = document.getElementById("alert-bar");
    const words = fresh.map(function (el) { return el.dataset.alert.startsWith("fax") ? "紧急来文" : "未接来电"; });
    bar.textContent = "注意：新的" + Array.from(new Set(words)).join("、") + "，请及时处理。";
    bar.hidden = false;
    fresh.forEach(function (el) { el.classList.add("flash"); });
    beep();
  }

  async function refresh() {
    const response = await fetch(board.dataset.fragment, { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) return;
    board.innerHTML = await response.text();
    readOffset(board);
    tickRings();
    checkAlerts(board);
    board.dataset.version = String((parseInt(board.dataset.version || "0", 10) + 1));
  }

  if (board) {
    readOffset(board);
    checkAlerts(board);
    const state = document.getElementById("live-state");
    const source = new EventSource(board.dataset.live);
    let pending = null, again = false;
    function update() {
      if (pending) { again = true; return; }
      pending = refresh().finally(function () {
        pending = null;
        if (again) { again = false; update(); }
      });
    }
    source.addEventListener("change", update);
    source.onopen = function () { if (state) state.textContent = "实时"; };
    source.onerror = function () { if (state) state.textContent = "连接中断，正在重连"; };
    setInterval(tickRings, 250);
    tickRings();
  }
})();

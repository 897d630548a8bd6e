// The core trainer's check-in screen: fetches the current code and its QR code from
// code.json and redraws them when the 15-second window turns; counts down to the next code.
// Loaded with <script src> (no inline script: the pages run under a strict CSP).
(function () {
  "use strict";
  var screen = document.getElementById("checkin-screen");
  if (!screen || !window.fetch) { return; }
  var url = screen.getAttribute("data-code-url");
  var lastWindow = screen.getAttribute("data-window");
  var qr = document.getElementById("checkin-qr");
  var path = document.getElementById("checkin-qr-path");
  var code = document.getElementById("checkin-code");
  var expires = document.getElementById("checkin-expires");
  var count = document.getElementById("checkin-count");
  var offline = document.getElementById("checkin-offline");
  var remaining = parseInt(expires.textContent, 10) || 15;
  var ticks = 0;
  var busy = false;

  function show(data) {
    if (!data.open) { window.location.reload(); return; }
    if (String(data.window) !== lastWindow && data.code) {
      lastWindow = String(data.window);
      code.textContent = data.code.slice(0, 3) + " " + data.code.slice(3);
      qr.setAttribute("viewBox", "0 0 " + data.qr.size + " " + data.qr.size);
      path.setAttribute("d", data.qr.path);
    }
    count.textContent = String(data.checked_in);
    remaining = data.expires_in;
    expires.textContent = String(remaining);
  }

  function refresh() {
    if (busy) { return; }
    busy = true;
    fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) { offline.hidden = true; show(data); })
      .catch(function () { offline.hidden = false; })
      .then(function () { busy = false; });
  }

  // Every second: count down; fetch when the window turns, and every 5 s for the count.
  window.setInterval(function () {
    ticks += 1;
    remaining -= 1;
    if (remaining <= 0 || ticks % 5 === 0) {
      refresh();
    } else {
      expires.textContent = String(remaining);
    }
  }, 1000);
})();

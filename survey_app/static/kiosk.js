/* SIPAS kiosk pages: the offline outbox (service worker /k/sw.js) and the
 * "n ratings waiting to be sent" line.  Loaded on kiosk pages only; without it
 * (or without service workers) the kiosk works as a plain online form. */
(function () {
  "use strict";
  var line = document.getElementById("kiosk-queue");
  if (!line || !("serviceWorker" in navigator)) return;
  var sw = navigator.serviceWorker;

  function show(n) {
    if (!n) { line.hidden = true; line.textContent = ""; return; }
    line.textContent = line.getAttribute(n === 1 ? "data-one" : "data-many").replace("%n", String(n));
    line.hidden = false;
  }
  sw.addEventListener("message", function (e) {
    if (e.data && e.data.type === "queue") show(e.data.count);
  });

  // scope: /k/, the folder of the script
  sw.register(line.getAttribute("data-sw")).then(function () {
    return sw.ready;
  }).then(function (reg) {
    var ask = function (type, extra) {
      var to = sw.controller || reg.active;
      if (!to) return;
      var msg = { type: type };
      for (var k in extra || {}) msg[k] = extra[k];
      to.postMessage(msg);
    };
    // What a kiosk needs offline: its form and thank-you page in each language, this page's scripts.
    var urls = line.getAttribute("data-pages").split(" ");
    [].forEach.call(document.scripts, function (s) { if (s.src) urls.push(s.src); });
    ask("warm", { urls: urls });
    window.addEventListener("online", function () { ask("flush"); });
    setInterval(function () { if (!line.hidden) ask("flush"); }, 30000);
  }).catch(function (err) { console.warn("kiosk service worker:", err); });
})();

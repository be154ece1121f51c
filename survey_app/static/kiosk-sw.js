/* SIPAS kiosk service worker, served as /k/sw.js (scope /k/): a kiosk whose
 * network drops keeps every rating on the tablet and sends it when the
 * network returns.  The phone form (/c/...) is outside its scope.
 *
 * - A form POST that cannot reach the server (a network error, never an
 *   answer of the server) is kept in IndexedDB under its idempotency key and
 *   the citizen sees the thank-you page (from the cache).
 * - Kiosk pages are fetched from the network first; a copy of each is kept so
 *   that the kiosk still shows a form offline (with a fresh key each time:
 *   two citizens never share one) and the thank-you page.
 * - The outbox is sent when a page asks ("flush": on load, on the `online`
 *   event, every 30 s while ratings wait), on Background Sync, and after any
 *   answer from the network.  Each kept POST first fetches the kiosk form
 *   again for a fresh CSRF token (the same-origin page only this browser can
 *   read), then posts with the same idempotency key: the server stores each
 *   rating once, however often a send is retried.
 * - Pages are told the number waiting ({type: "queue", count}).
 */
"use strict";

var CACHE = "sipas-kiosk-1";
var DB_NAME = "sipas-kiosk";
var STORE = "outbox";
var SYNC_TAG = "sipas-outbox";
var FORM_PATH = /^\/k\/[^/]+$/;
var PAGE_PATH = /^\/k\/[^/]+(\/thanks)?$/;
var CSRF_RE = /name="csrf_token" value="([^"]*)"/;
var KEY_RE = /(name="k" value=")[^"]*(")/;

self.addEventListener("install", function () { self.skipWaiting(); });

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k !== CACHE; }).map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

// ------------------------------------------------------------------ the outbox (IndexedDB)

function openDb() {
  return new Promise(function (resolve, reject) {
    var req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = function () { req.result.createObjectStore(STORE, { keyPath: "k" }); };
    req.onsuccess = function () { resolve(req.result); };
    req.onerror = function () { reject(req.error); };
  });
}

function withStore(mode, work) {
  return openDb().then(function (db) {
    return new Promise(function (resolve, reject) {
      var tx = db.transaction(STORE, mode), req = work(tx.objectStore(STORE));
      tx.oncomplete = function () { db.close(); resolve(req ? req.result : undefined); };
      tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
    });
  });
}

function keep(entry) { return withStore("readwrite", function (s) { return s.put(entry); }); }
function drop(key) { return withStore("readwrite", function (s) { return s.delete(key); }); }
function waiting() { return withStore("readonly", function (s) { return s.getAll(); }); }
function waitingCount() { return withStore("readonly", function (s) { return s.count(); }); }

function tell() {
  return waitingCount().then(function (count) {
    return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
      list.forEach(function (c) { c.postMessage({ type: "queue", count: count }); });
    });
  });
}

// ------------------------------------------------------------------ sending

var flushing = null;

function flush() {
  if (!flushing) {
    flushing = sendAll().catch(function (err) { console.warn("kiosk outbox:", err); })
      .then(tell).then(function () { flushing = null; }, function () { flushing = null; });
  }
  return flushing;
}

function freshToken(url) {
  return fetch(url, { credentials: "same-origin", cache: "no-store" }).then(function (resp) {
    if (resp.status === 404 || resp.status === 410) return { gone: true };
    if (!resp.ok) return null;                       // 429 / 503: later
    return resp.text().then(function (html) {
      var m = CSRF_RE.exec(html);
      return m ? { token: m[1] } : null;
    });
  });
}

function sendOne(url, entry, token) {
  var body = new URLSearchParams(entry.body);
  body.set("csrf_token", token);
  return fetch(url, { method: "POST", body: body, credentials: "same-origin", redirect: "manual" })
    .then(function (resp) {
      if (resp.type === "opaqueredirect" || (resp.status >= 300 && resp.status < 400)) return "sent";
      if (resp.status === 408 || resp.status === 429 || resp.status >= 500) return "later";
      return "refused";                               // 400 / 404 / 410 / 413: it never will be
    });
}

function sendAll() {
  return waiting().then(function (entries) {
    var byUrl = {};
    entries.sort(function (a, b) { return a.at - b.at; }).forEach(function (e) {
      (byUrl[e.url] = byUrl[e.url] || []).push(e);
    });
    var urls = Object.keys(byUrl);
    var next = function (i) {
      if (i >= urls.length) return Promise.resolve();
      var url = urls[i];
      return freshToken(url).then(function (got) {
        if (!got) return null;                        // the server cannot take them now
        if (got.gone) {
          return Promise.all(byUrl[url].map(function (e) {
            console.warn("kiosk outbox: this kiosk address is no longer valid; rating dropped", e.k);
            return drop(e.k);
          })).then(function () { return next(i + 1); });
        }
        var one = function (j) {
          if (j >= byUrl[url].length) return next(i + 1);
          var e = byUrl[url][j];
          return sendOne(url, e, got.token).then(function (result) {
            if (result === "later") return null;
            if (result === "refused") console.warn("kiosk outbox: the server refused a kept rating", e.k);
            return drop(e.k).then(function () { return one(j + 1); });
          });
        };
        return one(0);
      });
    };
    return next(0);
  });
}

// ------------------------------------------------------------------ fetch

function cachePut(url, resp) {
  return caches.open(CACHE).then(function (c) { return c.put(url, resp); });
}

function cached(req) {
  var opts = { ignoreVary: true };
  return caches.match(req, opts).then(function (hit) {
    return hit || caches.match(req, { ignoreVary: true, ignoreSearch: true });
  });
}

function withFreshKey(resp) {
  return resp.text().then(function (html) {
    var key = self.crypto.randomUUID().replace(/-/g, "");
    var headers = new Headers();
    ["Content-Type", "Content-Security-Policy", "Cache-Control"].forEach(function (h) {
      if (resp.headers.get(h)) headers.set(h, resp.headers.get(h));
    });
    return new Response(html.replace(KEY_RE, "$1" + key + "$2"), { status: 200, headers: headers });
  });
}

function page(event) {
  var req = event.request, path = new URL(req.url).pathname;
  return fetch(req).then(function (resp) {
    if (resp.status === 200 && resp.type === "basic") {
      event.waitUntil(cachePut(req.url, resp.clone()));
    }
    event.waitUntil(flush());                          // the network answers: send what waits
    return resp;
  }, function (err) {
    return cached(req).then(function (hit) {
      if (!hit) throw err;
      return FORM_PATH.test(path) ? withFreshKey(hit) : hit;
    });
  });
}

function post(event) {
  var req = event.request, path = new URL(req.url).pathname;
  return req.clone().text().then(function (body) {
    return fetch(req).then(function (resp) {
      event.waitUntil(flush());
      return resp;
    }, function (err) {
      var key = new URLSearchParams(body).get("k");
      if (!key) throw err;
      return keep({ k: key, url: new URL(path, self.location.origin).href, body: body, at: Date.now() })
        .then(function () {
          if (self.registration.sync) self.registration.sync.register(SYNC_TAG).catch(function () {});
          event.waitUntil(tell());
          // the thank-you page in the language of the form it came from (kept in the cache)
          var thanks = new URL(path + "/thanks", self.location.origin), lang = null;
          try { lang = new URL(req.referrer).searchParams.get("lang"); } catch (e) { lang = null; }
          if (lang) thanks.searchParams.set("lang", lang);
          return Response.redirect(thanks.href, 303);
        });
    });
  });
}

function asset(req) {
  return cached(req).then(function (hit) {
    return hit || fetch(req).then(function (resp) {
      if (resp.status === 200) cachePut(req.url, resp.clone());
      return resp;
    });
  });
}

self.addEventListener("fetch", function (event) {
  var req = event.request, url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.method === "POST" && req.mode === "navigate" && FORM_PATH.test(url.pathname)) {
    event.respondWith(post(event));
  } else if (req.method === "GET" && url.pathname.indexOf("/static/") === 0 && url.search) {
    event.respondWith(asset(req));                    // versioned names: a cached copy is the right one
  } else if (req.method === "GET" && req.mode === "navigate" && PAGE_PATH.test(url.pathname)) {
    event.respondWith(page(event));
  }
});

// ------------------------------------------------------------------ messages and sync

function warm(urls) {
  return caches.open(CACHE).then(function (c) {
    return Promise.all(urls.filter(function (u) {
      return new URL(u, self.location.origin).origin === self.location.origin;
    }).map(function (u) {
      return c.match(u, { ignoreVary: true }).then(function (hit) {
        if (hit) return null;
        return fetch(u, { credentials: "same-origin" }).then(function (resp) {
          return resp.status === 200 ? c.put(u, resp) : null;
        }).catch(function () { return null; });
      });
    }));
  });
}

self.addEventListener("message", function (event) {
  var data = event.data || {};
  if (data.type === "warm") event.waitUntil(warm(data.urls || []).then(flush));
  else if (data.type === "flush") event.waitUntil(flush());
});

self.addEventListener("sync", function (event) {
  if (event.tag === SYNC_TAG) event.waitUntil(flush());
});

/* SIPAS public pages: small progressive enhancements; every page works without this file. */
(function () {
  "use strict";
  var errs = document.getElementById("errs");
  if (errs) errs.focus();
  // Comment: characters left.
  var t = document.getElementById("f-comment"), o = document.getElementById("comment-count");
  if (t && o && o.getAttribute("data-left")) {
    var m = +t.getAttribute("maxlength"), f = o.getAttribute("data-left");
    var u = function () { o.textContent = f.replace("%n", String(m - t.value.length).replace(/\B(?=(\d{3})+$)/g, ".")); };
    t.addEventListener("input", u); u();
  }
  // Survey form: one tap sends once (the server is idempotent anyway).
  var s = document.querySelector("form.survey");
  // Enter on a choice never sends a form (without this script the server only re-shows it).
  [].forEach.call(document.querySelectorAll("form.survey"), function (f) {
    f.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && e.target.type === "radio") e.preventDefault();
    });
  });
  if (s) {
    s.addEventListener("submit", function () {
      var b = s.querySelector("button.btn[type=submit]");
      setTimeout(function () { b.disabled = true; }, 0);
      setTimeout(function () { b.disabled = false; }, 8000);
    });
    // Kiosk: a half-filled (or English) form left alone for data-idle seconds goes back
    // to a fresh Vietnamese one, so the next person never sees the last one's answers.
    var fresh = s.getAttribute("data-fresh");
    if (s.getAttribute("data-kiosk") && fresh) {
      var idleMs = 1000 * (+s.getAttribute("data-idle") || 90), idle;
      var used = function () {
        return document.documentElement.lang !== "vi" || !!s.querySelector("input:checked") ||
          [].some.call(s.querySelectorAll("textarea"), function (t) { return t.value; });
      };
      var arm = function () {
        clearTimeout(idle);
        idle = setTimeout(function () { if (used()) location.replace(fresh); else arm(); }, idleMs);
      };
      ["input", "change", "click", "keydown", "touchstart", "scroll"].forEach(function (n) {
        document.addEventListener(n, arm, { passive: true });
      });
      arm();
    }
  }
  // Kiosk thank-you page: a visible countdown back to a fresh form, and "I need more time".
  var cd = document.getElementById("countdown");
  if (cd) {
    var left = +cd.getAttribute("data-seconds") || 8, next = cd.getAttribute("data-next"),
        text = cd.getAttribute("data-text"), more = document.getElementById("more-time");
    var show = function () { cd.textContent = text.replace("%n", String(left)); };
    show();
    var tick = setInterval(function () {
      left -= 1;
      if (left <= 0) { clearInterval(tick); location.replace(next); return; }
      show();
    }, 1000);
    if (more) {
      more.hidden = false;
      more.addEventListener("click", function () { left = Math.min(left + 60, 600); show(); });
    }
  }
  // Staff entry sheet: a valid digit moves to the next field.
  var sheet = document.querySelector("form.sheet");
  if (sheet) {
    var els = [].slice.call(sheet.querySelectorAll("input.v,select,textarea,input[type=checkbox]"));
    els.forEach(function (el, i) {
      if (!el.classList.contains("v")) return;
      el.addEventListener("input", function () {
        var ok = el.getAttribute("data-ok");
        if (el.value.length === 1 && ok.indexOf(el.value) >= 0 && els[i + 1]) els[i + 1].focus();
      });
    });
    // Enter saves from any field (a select or checkbox would not submit by itself), except in the comment.
    sheet.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && e.target.tagName !== "TEXTAREA" && e.target.tagName !== "BUTTON") {
        e.preventDefault();
        if (sheet.requestSubmit) sheet.requestSubmit(); else sheet.submit();
      }
    });
  }
})();

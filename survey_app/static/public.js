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
  if (s) {
    s.addEventListener("submit", function () {
      var b = s.querySelector("button[type=submit]");
      setTimeout(function () { b.disabled = true; }, 0);
      setTimeout(function () { b.disabled = false; }, 8000);
    });
    // Kiosk: an abandoned form goes back to a fresh one after 3 minutes idle.
    if (s.getAttribute("data-kiosk")) {
      var idle, reset = function () { clearTimeout(idle); idle = setTimeout(function () { location.href = location.pathname; }, 180000); };
      ["input", "click", "keydown", "touchstart"].forEach(function (n) { document.addEventListener(n, reset); });
      reset();
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

// SIPAS staff pages: progressive enhancement only (every page works without it).
// A form with data-confirm asks before it is sent (e.g. issuing a new QR code).
document.addEventListener("submit", function (event) {
  var message = event.target && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// Progressive enhancement: while a negotiation or transfer is still moving, ask the same URL for
// its JSON every second and reload the page when its state changes. Without scripts the page
// works the same; the reader reloads it by hand.
(function () {
  var node = document.querySelector("[data-progress-state]");
  if (!node) { return; }
  var shown = node.getAttribute("data-progress-state");
  var finals = (node.getAttribute("data-progress-final") || "").split(" ");
  var polls = 0;
  function poll() {
    if (finals.indexOf(shown) >= 0 || polls > 120) { return; }
    polls += 1;
    fetch(window.location.href, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.state && body.state !== shown) { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  window.setTimeout(poll, 1000);
})();

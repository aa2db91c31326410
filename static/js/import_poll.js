// Wade's upload page: once a file is accepted, ask for its import every two
// seconds and show what it did to the order book, without a reload. The
// upload page swaps its result block in place, so look again after a swap.
(function () {
  "use strict";
  var timer = null;

  function number(n) { return Number(n || 0).toLocaleString("en-US"); }

  function show(box, imp) {
    var book = imp.book || {};
    box.textContent = "";
    var head = document.createElement("b");
    head.textContent = box.getAttribute("data-done-text");
    box.appendChild(head);
    [["new_orders", "data-new-label"], ["changed_orders", "data-changed-label"],
     ["unchanged_orders", "data-unchanged-label"], ["missing_from_snapshot", "data-missing-label"]]
      .forEach(function (pair, i) {
        box.appendChild(document.createTextNode((i ? " · " : " ") + box.getAttribute(pair[1]) + " "));
        var value = document.createElement("b");
        value.setAttribute("data-book", pair[0]);
        value.textContent = number(book[pair[0]]);
        box.appendChild(value);
      });
    if (imp.scorecard_ref) {
      box.appendChild(document.createTextNode(" · "));
      var link = document.createElement("a");
      link.href = imp.scorecard_ref;
      link.textContent = "→";
      box.appendChild(link);
    }
    box.setAttribute("data-done", "1");
  }

  function poll() {
    var box = document.querySelector("[data-import-poll]:not([data-done])");
    if (!box || !window.fetch) { timer = null; return; }
    fetch(box.getAttribute("data-import-poll"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.reconciliation_import) show(box, body.reconciliation_import);
      })
      .catch(function () {})
      .then(function () { timer = setTimeout(poll, 2000); });
  }

  function start() { if (!timer) timer = setTimeout(poll, 1000); }
  document.addEventListener("DOMContentLoaded", start);
  new MutationObserver(start).observe(document.documentElement, { childList: true, subtree: true });
})();

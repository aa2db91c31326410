// Evidence queue: select-all, a confirm before tagging a whole filter, and
// quick tagging of one order through the API without reloading the page.
// Without this script every form still works as a plain POST.
(function () {
  var table = document.querySelector("table.ev-table");
  var bulk = document.getElementById("bulk-form");

  function boxes() {
    return document.querySelectorAll('input[type=checkbox][name=order_ids][form="bulk-form"]');
  }

  function refreshSelection() {
    var n = 0;
    boxes().forEach(function (box) { if (box.checked) n += 1; });
    var counter = document.querySelector(".ev-selected");
    if (counter) counter.textContent = String(n);
    var button = document.querySelector("[data-needs-selection]");
    if (button) button.disabled = n === 0;
  }

  var all = document.querySelector("[data-select-all]");
  if (all) {
    all.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = all.checked; });
      refreshSelection();
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches('input[name=order_ids][form="bulk-form"]')) {
      refreshSelection();
    }
  });
  refreshSelection();

  if (bulk) {
    bulk.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      var question = submitter && submitter.getAttribute("data-confirm");
      if (question && !window.confirm(question)) event.preventDefault();
    });
  }

  if (!table || !window.fetch) return;
  var fieldsNode = document.getElementById("ev-inline-fields");
  var inlineFields = fieldsNode ? JSON.parse(fieldsNode.textContent) : {};
  var api = table.getAttribute("data-api");

  function number(n) { return Number(n).toLocaleString("en-US"); }

  function updateCounts(counts) {
    if (!counts) return;
    document.querySelectorAll("[data-count]").forEach(function (el) {
      var key = el.getAttribute("data-count");
      if (key in counts) el.textContent = number(counts[key]);
    });
    var bar = document.querySelector("progress[data-testid=progress]");
    if (bar) { bar.max = counts.total; bar.value = counts.tagged; }
    var text = document.querySelector("[data-testid=progress-text]");
    if (text) {
      var percent = counts.total ? Math.floor((counts.tagged * 100) / counts.total) : 0;
      var line = text.getAttribute("data-format")
        .replace("{t}", number(counts.tagged))
        .replace("{n}", number(counts.total))
        .replace("{p}", String(percent));
      if (counts.total && !counts.untagged) line += " · " + text.getAttribute("data-done");
      text.textContent = line;
    }
  }

  function showTag(row, select, ref) {
    var cell = row.querySelector("[data-tag-cell]");
    if (!cell) return;
    cell.textContent = "";
    var badge = document.createElement("span");
    badge.className = "status ev-tag-" + select.value;
    badge.textContent = select.options[select.selectedIndex].text;
    cell.appendChild(badge);
    if (ref) {
      var small = document.createElement("div");
      small.className = "small";
      small.textContent = ref;
      cell.appendChild(small);
    }
  }

  function errorText(body) {
    if (!body) return table.getAttribute("data-failed");
    var detail = body.detail;
    if (detail && typeof detail === "object" && !Array.isArray(detail)) detail = detail.message;
    if (Array.isArray(detail)) detail = detail.map(function (d) { return d.msg || d.message; }).join("; ");
    return detail || table.getAttribute("data-failed");
  }

  // The inline reference starts as the row's payment reference (the default
  // tag is paid); another tag wants its own reference, so it is cleared.
  table.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.matches("[data-inline-tag] select")) return;
    var input = select.parentNode.querySelector("input[type=text]");
    var own = input.defaultValue;
    if (select.value === "paid" && !input.value) input.value = own;
    else if (select.value !== "paid" && input.value === own) input.value = "";
  });

  // Enter in a row's reference tags that row (the page's inline form itself
  // submits nothing on Enter: its first button is disabled).
  table.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || !input.matches("[data-inline-tag] input[type=text]")) return;
    event.preventDefault();
    input.parentNode.querySelector("button").click();
  });

  var inlineForm = document.getElementById(table.getAttribute("data-inline-form"));
  if (!inlineForm) return;
  inlineForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = event.submitter;
    if (!button || !button.closest("[data-inline-tag]")) return;
    var cell = button.closest("[data-inline-tag]");
    var row = button.closest("tr");
    var select = cell.querySelector("select");
    var refInput = cell.querySelector("input[type=text]");
    var message = cell.querySelector(".ev-inline-msg");
    var ref = refInput.value.trim();
    var payload = { order_ids: [button.value], tag: select.value };
    if (ref) payload[inlineFields[select.value] || "evidence_ref"] = ref;
    button.disabled = true;
    message.textContent = "";
    fetch(api, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": inlineForm.querySelector("input[name=csrfmiddlewaretoken]").value
      },
      body: JSON.stringify(payload)
    }).then(function (response) {
      return response.json().catch(function () { return null; }).then(function (body) {
        if (response.status !== 201) throw body;
        showTag(row, select, ref);
        // The answer counts the training programme; update the cards only
        // when they show the same programme.
        if ((body.program_id || "*") === table.getAttribute("data-program")) updateCounts(body.counts);
        message.className = "small ev-inline-msg ok";
        message.textContent = table.getAttribute("data-saved");
        row.classList.add("ev-done");
      });
    }).catch(function (body) {
      message.className = "small ev-inline-msg bad";
      message.textContent = errorText(body);
    }).then(function () {
      button.disabled = false;
    });
  });
})();

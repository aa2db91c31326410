// Wade's upload page: send the file with XMLHttpRequest so the progress bar
// shows the bytes sent, then swap the server-rendered page in place (result,
// request status, history, and the form itself, which an accepted file
// closes). The form stays a plain multipart post when this script does not
// run.
(function () {
  if (!window.XMLHttpRequest || !window.FormData || !window.DOMParser) return;

  function mb(bytes) {
    return (bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0) + " MB";
  }

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.querySelector("[data-upload-page]");
    var current = document.querySelector("[data-upload-page]");
    if (!fresh || !current) return false;
    current.replaceWith(document.importNode(fresh, true));
    bind(document.querySelector("form[data-upload-form]"));
    var result = document.querySelector("[data-upload-result]");
    if (result && result.scrollIntoView) result.scrollIntoView({ block: "start" });
    return true;
  }

  function bind(form) {
    if (!form) return;
    var input = form.querySelector("input[type=file]");
    var button = form.querySelector("button[type=submit]");
    var wrap = form.querySelector("[data-upload-progress]");
    var bar = wrap && wrap.querySelector("progress");
    var label = wrap && wrap.querySelector("[data-upload-progress-label]");
    var maxBytes = parseInt(form.dataset.maxBytes || "0", 10);

    function say(text) {
      if (label) label.textContent = text;
    }

    form.addEventListener("submit", function (event) {
      var file = input && input.files && input.files[0];
      if (!file) return; // the browser's own "required" message
      event.preventDefault();
      if (wrap) wrap.hidden = false;
      if (maxBytes && file.size > maxBytes) {
        if (bar) bar.value = 0;
        say(form.dataset.tooLargeText);
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action || window.location.href);
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      var token = form.querySelector("[name=csrfmiddlewaretoken]");
      if (token) xhr.setRequestHeader("X-CSRFToken", token.value);
      xhr.upload.addEventListener("progress", function (e) {
        if (!e.lengthComputable || !bar) return;
        bar.max = e.total;
        bar.value = e.loaded;
        say(form.dataset.sentText + " " + mb(e.loaded) + " / " + mb(e.total));
      });
      xhr.upload.addEventListener("load", function () {
        if (bar) bar.value = bar.max;
        say(form.dataset.validatingText);
      });
      xhr.addEventListener("load", function () {
        if (xhr.responseURL && xhr.responseURL.indexOf("result=") !== -1 && window.history.replaceState) {
          window.history.replaceState(null, "", xhr.responseURL);
        }
        if (!swap(xhr.responseText)) {
          button.disabled = false;
          say(form.dataset.failedText);
        }
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        say(form.dataset.failedText);
      });
      button.disabled = true;
      if (bar) bar.value = 0;
      xhr.send(new FormData(form));
    });
  }

  bind(document.querySelector("form[data-upload-form]"));
})();

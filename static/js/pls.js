// The PLS page: verifying a URL takes up to CLAIM_TIMEOUT_SECONDS, so the
// button says so and cannot be pressed twice.
(function () {
  document.querySelectorAll("form[data-verify-form]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[data-busy-label]");
      if (!button) return;
      button.disabled = true;
      button.textContent = button.dataset.busyLabel;
    });
  });
})();

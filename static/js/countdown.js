// Live due countdowns: <time class="countdown" data-due="ISO">.
(function () {
  var zh = (document.documentElement.lang || "").toLowerCase().indexOf("zh") === 0;
  function fmt(ms) {
    var s = Math.floor(Math.abs(ms) / 1000);
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    var parts = zh ? [d ? d + " 天" : "", h + " 小時", m + " 分"] : [d ? d + "d" : "", h + "h", m + "m"];
    return parts.filter(Boolean).join(" ");
  }
  function tick() {
    document.querySelectorAll("time.countdown[data-due]").forEach(function (el) {
      var left = new Date(el.dataset.due).getTime() - Date.now();
      if (isNaN(left)) return;
      el.textContent = left >= 0 ? (zh ? "剩 " : "") + fmt(left) + (zh ? "" : " left")
                                 : (zh ? "逾期 " : "overdue ") + fmt(left);
      el.classList.toggle("bad", left < 0);
    });
  }
  tick();
  setInterval(tick, 30000);
})();

// Live due countdowns: <time class="countdown" data-due="ISO">, only on
// requests still owed a file. Words as the server writes them: "23 小時 52 分",
// "2 天 3 小時", "4 分鐘" (never "0 小時 1 分").
(function () {
  var zh = (document.documentElement.lang || "").toLowerCase().indexOf("zh") === 0;
  function words(ms) {
    var mins = Math.floor(Math.abs(ms) / 60000);
    var d = Math.floor(mins / 1440), h = Math.floor((mins % 1440) / 60), m = mins % 60;
    if (zh) {
      if (d) return d + " 天" + (h ? " " + h + " 小時" : "");
      if (h) return h + " 小時" + (m ? " " + m + " 分" : "");
      return Math.max(m, 1) + " 分鐘";
    }
    if (d) return h ? d + "d " + h + "h" : d + (d === 1 ? " day" : " days");
    if (h) return m ? h + "h " + m + "m" : h + (h === 1 ? " hour" : " hours");
    m = Math.max(m, 1);
    return m + (m === 1 ? " minute" : " minutes");
  }
  function tick() {
    document.querySelectorAll("time.countdown[data-due]").forEach(function (el) {
      var left = new Date(el.dataset.due).getTime() - Date.now();
      if (isNaN(left)) return;
      el.textContent = left >= 0 ? (zh ? "剩 " : "") + words(left) + (zh ? "" : " left")
                                 : (zh ? "逾期 " : "overdue by ") + words(left);
      el.classList.toggle("bad", left < 0);
    });
  }
  tick();
  setInterval(tick, 30000);
})();

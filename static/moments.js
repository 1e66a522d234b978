// Times on the sessions pages: the server writes "3 minutes ago" and the exact UTC time; this
// shows the exact time in the reader's own time zone on hover and on keyboard focus, and keeps
// the relative words current. Without it, the server's text and UTC title stay.
(function () {
  "use strict";
  var UNITS = [["year", 365 * 86400], ["month", 30 * 86400], ["day", 86400],
               ["hour", 3600], ["minute", 60]];
  var exact = new Intl.DateTimeFormat(undefined, {dateStyle: "full", timeStyle: "long"});

  function ago(date) {
    var seconds = (Date.now() - date.getTime()) / 1000;
    for (var i = 0; i < UNITS.length; i++) {
      var count = Math.floor(Math.abs(seconds) / UNITS[i][1]);
      if (count) {
        var words = count + " " + UNITS[i][0] + (count === 1 ? "" : "s");
        return seconds > 0 ? words + " ago" : "in " + words;
      }
    }
    return "just now";
  }

  function localise(time, index) {
    var date = new Date(time.getAttribute("datetime"));
    if (isNaN(date.getTime())) { return; }
    var tip = document.createElement("span");
    tip.className = "moment-exact";
    tip.id = "moment-" + index;
    tip.setAttribute("role", "tooltip");
    tip.textContent = exact.format(date);
    time.removeAttribute("title");  // the tooltip says it, in the reader's time zone
    time.setAttribute("tabindex", "0");
    time.setAttribute("aria-describedby", tip.id);
    time.classList.add("moment");
    time.after(tip);
  }

  function refresh() {
    document.querySelectorAll("time[data-moment]").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (!isNaN(date.getTime())) { time.textContent = ago(date); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("time[data-moment]").forEach(localise);
    refresh();
    window.setInterval(refresh, 30000);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && document.activeElement &&
        document.activeElement.matches("time[data-moment]")) {
      document.activeElement.blur();
    }
  });
}());

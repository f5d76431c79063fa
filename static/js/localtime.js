// localtime.js adds the viewer's local time after each
// <time data-localtime datetime="…"> element. The server writes the time in
// UTC, which stays the whole text for browsers without JavaScript; this
// only appends, and only when the viewer's time zone is not UTC.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  var nodes = document.querySelectorAll("time[data-localtime][datetime]");
  for (var i = 0; i < nodes.length; i++) {
    var t = nodes[i];
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime()) || d.getTimezoneOffset() === 0) {
      continue;
    }
    var span = document.createElement("span");
    span.className = "localtime";
    span.setAttribute("data-testid", "localtime");
    span.textContent = " (your time: " + format.format(d) + ")";
    t.insertAdjacentElement("afterend", span);
  }
})();

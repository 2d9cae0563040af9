// The live app logs of an installation: nothing is read until the person
// asks (each reading is recorded as an operation), then each line the app's
// processes print is appended as text. The server sends each line's time as
// its event ID, so a dropped connection resumes after the last line.
(function () {
  "use strict";
  var show = document.getElementById("applog-show");
  var log = document.getElementById("applog");
  var problem = document.getElementById("applog-problem");
  if (!show || !log || !window.EventSource) {
    return;
  }
  show.addEventListener("click", function () {
    show.hidden = true;
    log.hidden = false;
    var events = new EventSource(show.dataset.events);
    events.onmessage = function (e) {
      var follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
      log.append(e.data + "\n"); // text, never HTML
      if (follow) {
        log.scrollTop = log.scrollHeight;
      }
    };
    events.addEventListener("problem", function (e) {
      events.close();
      problem.textContent = e.data;
      problem.hidden = false;
    });
  });
})();

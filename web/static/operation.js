// The live log of an operation: appends each line the daemon writes and, when
// the operation ends, shows its final status, all without a reload. The server
// sends one event per log line with the line's number as its ID, so when the
// connection drops the browser resumes after the last line it got.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || !log.dataset.events || !window.EventSource) {
    return;
  }
  var status = document.getElementById("status");
  var reason = document.getElementById("reason");
  var finished = document.getElementById("finished");
  var cancel = document.getElementById("cancel");

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
  }

  var events = new EventSource(log.dataset.events);
  events.onmessage = function (e) {
    var follow = nearBottom();
    log.append(e.data + "\n"); // text, never HTML
    if (follow) {
      window.scrollTo(0, document.body.scrollHeight);
    }
  };
  events.addEventListener("reason", function (e) {
    if (reason) {
      reason.textContent = e.data;
      reason.classList.remove("empty");
    }
  });
  events.addEventListener("finished", function (e) {
    if (finished) {
      finished.textContent = e.data;
    }
  });
  events.addEventListener("status", function (e) {
    events.close();
    status.textContent = e.data;
    status.dataset.status = e.data;
    if (cancel) {
      cancel.hidden = true;
    }
  });
})();

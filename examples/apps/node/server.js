// The web process: answers on $PORT with the worker's last heartbeat, which
// shows both processes run side by side in the instance.
const http = require("http");
const fs = require("fs");

const beat = process.env.HEARTBEAT_FILE || "/tmp/worker-heartbeat";
const port = Number(process.env.PORT || 5000);

http
  .createServer((req, res) => {
    if (req.url === "/healthz") {
      res.end("ok\n");
      return;
    }
    let last = "none yet";
    try {
      last = fs.readFileSync(beat, "utf8").trim();
    } catch {}
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
    res.end(`Hello from slipway (Node ${process.version}); worker heartbeat: ${last}\n`);
  })
  .listen(port, () => console.log(`listening on ${port}`));

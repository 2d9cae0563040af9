// The worker process: no port, just work; here a heartbeat every 5 seconds,
// in the log and in a file the web process reads.
const fs = require("fs");

let n = 0;
function beat() {
  n += 1;
  const line = `tick ${n} at ${new Date().toISOString()}`;
  console.log(line);
  fs.writeFileSync(process.env.HEARTBEAT_FILE || "/tmp/worker-heartbeat", line + "\n");
}
beat();
setInterval(beat, 5000);

"""A visit counter: Python's standard library only (http.server, sqlite3).

The database lives on the volume slipway.yml mounts at /var/lib/counter, so
the count survives deploys and rollbacks. `python3 app.py migrate` (the
Procfile's release step) makes the schema before traffic moves.
"""
import http.server
import os
import sqlite3
import sys

DB = os.environ.get("COUNTER_DB", "/var/lib/counter/visits.db")


def connect():
    os.makedirs(os.path.dirname(DB), exist_ok=True)
    # The old and the new instance share the volume during a deploy: wait
    # for the other's write rather than fail.
    conn = sqlite3.connect(DB, timeout=5)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def migrate():
    with connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)")
    print(f"schema ready in {DB}")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            with connect() as conn:
                conn.execute("SELECT count(*) FROM visits")
            return self.reply("ok\n")
        if self.path != "/":
            return self.reply("not found\n", 404)
        with connect() as conn:
            conn.execute("INSERT INTO visits (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1")
            (n,) = conn.execute("SELECT n FROM visits").fetchone()
        self.reply(f"Hello from slipway: visit number {n}\n")

    def reply(self, body, status=200):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    if sys.argv[1:] == ["migrate"]:
        migrate()
        sys.exit(0)
    port = int(os.environ.get("PORT", "5000"))
    print(f"listening on {port}, database {DB}")
    http.server.ThreadingHTTPServer(("", port), Handler).serve_forever()

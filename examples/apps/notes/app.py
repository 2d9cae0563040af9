"""Notes kept in Postgres: a database slipway provisions and attaches.

`db attach NAME APP/ENV` puts the server's URL into DATABASE_URL (it
reaches the server over a unix socket slipway mounts in the instance);
`python3 app.py migrate`, the Procfile's release step, makes the table.
GET / counts the notes and shows the newest; POST / adds the request body
as a note.
"""
import http.server
import os
import sys

import psycopg2


def connect():
    return psycopg2.connect(os.environ["DATABASE_URL"])


def migrate():
    with connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS notes (id serial PRIMARY KEY, body text NOT NULL)")
    print("schema ready")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with connect() as conn, conn.cursor() as cur:
            if self.path == "/healthz":
                cur.execute("SELECT 1")
                return self.reply("ok\n")
            cur.execute("SELECT count(*), (SELECT body FROM notes ORDER BY id DESC LIMIT 1) FROM notes")
            n, last = cur.fetchone()
        self.reply(f"{n} notes; the newest: {last or '-'}\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        with connect() as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO notes (body) VALUES (%s)", (body,))
        self.reply("noted\n", 201)

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
    else:
        http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()

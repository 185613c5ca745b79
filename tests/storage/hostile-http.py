#!/usr/bin/python3
# tests/storage/hostile-http.py MODE FILE PORTFILE: a web server that serves
# FILE with one kind of misbehaviour, for the HTTP backend's robustness tests.
# It writes its port to PORTFILE and counts requests in PORTFILE.count.
#   good         correct 206 answers (the control)
#   wrong-range  Content-Range names other bytes than were asked for
#   no-range     206 without Content-Range
#   short-body   a correct Content-Range, but fewer bytes in the body
#   long-body    more bytes in the body than were asked for
#   cut          the connection closes in the middle of the body
#   flaky        the first two requests get 503, then correct answers
#   grow         the stated total size changes after the first request
import http.server, os, re, sys, threading

mode, path, portfile = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(path, "rb").read()
count = 0
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        global count
        with lock:
            count += 1
            n = count
            with open(portfile + ".count", "w") as f:
                f.write(str(n))
        m = re.match(r"bytes=(\d+)-(\d+)$", self.headers.get("Range", ""))
        if not m:
            self.send_error(400)
            return
        a, b = int(m.group(1)), min(int(m.group(2)), len(data) - 1)
        body = data[a : b + 1]
        total = len(data)
        if mode == "flaky" and n <= 2:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206)
        if mode == "wrong-range":
            a, b = a + 512, b + 512
        if mode == "grow" and n > 1:
            total += 4096
        if mode != "no-range":
            self.send_header("Content-Range", "bytes %d-%d/%d" % (a, b, total))
        if mode == "short-body":
            body = body[: len(body) // 2]
        if mode == "long-body":
            body = body + b"x" * 4096
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()

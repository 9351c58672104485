"""A file server on 127.0.0.1 for the download tests: Range support on or off, and transfers that break on purpose."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FileServer:
    """Serves `files` (URL path -> bytes). `ranges` turns Range support on; `break_after` (bytes) cuts the next
    `breaks` full-body responses short, as a dropped connection would; `busy` rate-limits the first requests.
    Records every request's Range header."""

    def __init__(self, files: dict[str, bytes], ranges: bool = True, break_after: int | None = None, breaks: int = 0,
                 busy: int = 0):
        self.files, self.ranges, self.break_after, self.breaks = files, ranges, break_after, breaks
        self.busy = busy  # answer this many requests with 429 Too Many Requests (Retry-After: 1) first
        self.requests: list[tuple[str, str | None]] = []
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                body = server.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                if server.busy:
                    server.busy -= 1
                    self.send_response(429)
                    self.send_header("Retry-After", "1")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
                if server.ranges and m and int(m.group(1)) >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if server.ranges and m:
                    start, end = int(m.group(1)), int(m.group(2) or len(body) - 1)
                    part = body[start:end + 1]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{start + len(part) - 1}/{len(body)}")
                else:
                    part = body
                    self.send_response(200)
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if server.breaks and server.break_after is not None and len(part) > server.break_after:
                    server.breaks -= 1
                    part = part[:server.break_after]  # then the connection closes short of Content-Length
                    self.close_connection = True
                self.wfile.write(part)
                server.bytes_sent += len(part)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> "FileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

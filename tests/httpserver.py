"""A real HTTP server for the tests: files with Range requests, and a mock STAC API.

:class:`RangeServer` listens on 127.0.0.1 only (an ephemeral port), one thread per
connection, HTTP/1.1 keep-alive. It serves registered files (whole: 200; ``Range: bytes=``
single or multiple ranges: 206 with ``Content-Range`` or ``multipart/byteranges``; 416
outside the file), answers ``HEAD``, 404 for anything unknown, and counts every request
and body byte sent (``stats``). ``delay_s`` makes it slow (to test timeouts); ``fail``
maps paths to a status to return instead. ``broken_from`` breaks it part way: every
request from that byte on (a ``Range`` starting there or later; any request when 0) gets
``broken_status``, or, when that is 0, a hang-up without an answer (a server that died).

:class:`MockStac` adds a STAC API to a server: landing page, ``/collections``,
``/collections/{id}``, ``/collections/{id}/items/{item}`` and ``/search`` (GET and POST:
``collections``, ``datetime``, ``bbox``, ``intersects``, ``ids``, ``limit`` with ``next``
pages), answering from the item dicts it is given.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

Route = Callable[[str, str, dict[str, list[str]], bytes], tuple[int, str, bytes]]


@dataclass
class Hit:
    method: str
    path: str
    range: str | None
    status: int
    body_bytes: int


@dataclass
class Stats:
    hits: list[Hit] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.hits)

    @property
    def bytes(self) -> int:
        return sum(h.body_bytes for h in self.hits)

    def for_path(self, suffix: str) -> list[Hit]:
        return [h for h in self.hits if h.path.endswith(suffix)]


class RangeServer:
    """Serve files and routes on 127.0.0.1 with range support; see the module doc."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}
        self.routes: list[tuple[re.Pattern[str], Route]] = []
        self.fail: dict[str, int] = {}
        self.delay_s = 0.0
        self.broken_from: int | None = None
        self.broken_status = 0
        self.stats = Stats()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- set-up
    def add_file(self, url_path: str, path: Path) -> str:
        """Serve ``path`` at ``url_path``; return its full URL."""
        url_path = "/" + url_path.lstrip("/")
        self.files[url_path] = Path(path)
        return self.url(url_path)

    def add_route(self, pattern: str, route: Route) -> None:
        """Answer paths matching the regex ``pattern`` with ``route(method, path, query, body)``."""
        self.routes.append((re.compile(pattern), route))

    def url(self, url_path: str = "/") -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{url_path.lstrip('/')}"

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = Stats()

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self.stats.hits.append(hit)

    # -- life
    def start(self) -> "RangeServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> "RangeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client that gave up (a timeout in a test) mid-answer: expected
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: RangeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
        return

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def do_POST(self) -> None:  # noqa: N802
        self._serve(head=False)

    # -- dispatch
    def _serve(self, head: bool) -> None:
        srv = self.owner
        if srv.delay_s:
            time.sleep(srv.delay_s)
        parsed = urllib.parse.urlparse(self.path)
        path = urllib.parse.unquote(parsed.path)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        rng = self.headers.get("Range")
        if srv.broken_from is not None and _range_start(rng) >= srv.broken_from:
            if not srv.broken_status:  # hang up without a status line, as a crashed server
                self.close_connection = True
                return srv._record(Hit(self.command, path, rng, 0, 0))  # status 0: hung up
            return self._send(srv.broken_status, "text/plain", b"broken on purpose\n", head, path, rng)
        if path in srv.fail:
            return self._send(srv.fail[path], "text/plain", b"failure on purpose\n", head, path, rng)
        if path in srv.files and srv.files[path].is_file():
            return self._send_file(srv.files[path], head, path, rng)
        for pattern, route in srv.routes:
            if pattern.fullmatch(path):
                status, ctype, data = route(self.command, path, urllib.parse.parse_qs(parsed.query), body)
                return self._send(status, ctype, data, head, path, rng)
        return self._send(404, "text/plain", b"not found\n", head, path, rng)

    def _send(self, status: int, ctype: str, data: bytes, head: bool, path: str, rng: str | None,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(data)
        self.owner._record(Hit(self.command, path, rng, status, 0 if head else len(data)))

    def _send_file(self, p: Path, head: bool, path: str, rng: str | None) -> None:
        size = p.stat().st_size
        accept = {"Accept-Ranges": "bytes", "Last-Modified": "Mon, 26 Sep 2022 08:00:00 GMT"}
        ctype = "application/json" if p.suffix == ".json" else "image/tiff"
        if not rng:
            data = b"" if head else p.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(size))
            for k, v in accept.items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(data)
            self.owner._record(Hit(self.command, path, None, 200, len(data)))
            return
        spans = _parse_ranges(rng, size)
        if not spans:
            return self._send(416, "text/plain", b"", head, path, rng, {"Content-Range": f"bytes */{size}"})
        with open(p, "rb") as f:
            parts = []
            for a, b in spans:
                f.seek(a)
                parts.append((a, b, f.read(b - a + 1)))
        if len(parts) == 1:
            a, b, data = parts[0]
            return self._send(206, ctype, data, head, path, rng,
                              {**accept, "Content-Range": f"bytes {a}-{b}/{size}"})
        boundary = "QMBOUNDARY"
        chunks = []
        for a, b, data in parts:
            chunks.append(f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {a}-{b}/{size}\r\n\r\n".encode())
            chunks.append(data + b"\r\n")
        chunks.append(f"--{boundary}--\r\n".encode())
        return self._send(206, f"multipart/byteranges; boundary={boundary}", b"".join(chunks), head, path, rng, accept)


def _range_start(header: str | None) -> int:
    """The first byte a ``Range`` header asks for (0 without one; suffix ranges count as 0)."""
    m = re.match(r"bytes=\s*(\d+)-", header or "")
    return int(m.group(1)) if m else 0


def _parse_ranges(header: str, size: int) -> list[tuple[int, int]]:
    """``bytes=a-b,c-,-n`` as inclusive (start, end) pairs within the file (empty: 416)."""
    if not header.startswith("bytes="):
        return []
    out = []
    for part in header[6:].split(","):
        a, _, b = part.strip().partition("-")
        if a == "":
            n = int(b)
            start, end = max(0, size - n), size - 1
        else:
            start = int(a)
            end = min(int(b), size - 1) if b else size - 1
        if start <= end and start < size:
            out.append((start, end))
    return out


# ---------------------------------------------------------------------- mock STAC API
CONFORMS = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]

class MockStac:
    """A STAC API answering from item dicts, mounted on a :class:`RangeServer` at ``prefix``."""

    def __init__(self, server: RangeServer, items: list[dict[str, Any]], *, prefix: str = "/stac",
                 by_bbox: bool = False) -> None:
        self.server = server
        self.items = items
        self.by_bbox = by_bbox  # match on the items' bbox only, as some APIs do
        self.prefix = prefix.rstrip("/")
        self.searches: list[dict[str, Any]] = []
        p = re.escape(self.prefix)
        server.add_route(p + "/?", self._landing)
        server.add_route(p + "/conformance", self._conformance)
        server.add_route(p + "/collections", self._collections)
        server.add_route(p + "/collections/[^/]+", self._collection)
        server.add_route(p + "/collections/[^/]+/items/[^/]+", self._item)
        server.add_route(p + "/search", self._search)

    @property
    def url(self) -> str:
        return self.server.url(self.prefix)

    def _json(self, obj: Any, status: int = 200, ctype: str = "application/json") -> tuple[int, str, bytes]:
        return status, ctype, json.dumps(obj).encode()

    def _landing(self, method, path, query, body):
        root = self.url
        return self._json({
            "type": "Catalog", "stac_version": "1.0.0", "id": "mock", "description": "mock STAC API (tests)",
            "conformsTo": CONFORMS,
            "links": [
                {"rel": "self", "href": root, "type": "application/json"},
                {"rel": "root", "href": root, "type": "application/json"},
                {"rel": "data", "href": root + "/collections", "type": "application/json"},
                {"rel": "conformance", "href": root + "/conformance"},
                {"rel": "search", "href": root + "/search", "type": "application/geo+json", "method": "GET"},
                {"rel": "search", "href": root + "/search", "type": "application/geo+json", "method": "POST"},
            ],
        })

    def _conformance(self, method, path, query, body):
        return self._json({"conformsTo": CONFORMS})

    def _collection_doc(self, cid: str) -> dict[str, Any]:
        root = self.url
        return {
            "type": "Collection", "stac_version": "1.0.0", "id": cid, "description": cid,
            "license": "proprietary",
            "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
            "links": [{"rel": "self", "href": f"{root}/collections/{cid}"}, {"rel": "root", "href": root},
                      {"rel": "items", "href": f"{root}/collections/{cid}/items"}],
        }

    def _collections(self, method, path, query, body):
        ids = sorted({it.get("collection", "") for it in self.items})
        return self._json({"collections": [self._collection_doc(c) for c in ids], "links": []})

    def _collection(self, method, path, query, body):
        cid = path.rsplit("/", 1)[-1]
        if not any(it.get("collection") == cid for it in self.items):
            return self._json({"code": "NotFound"}, 404)
        return self._json(self._collection_doc(cid))

    def _linked(self, it: dict[str, Any]) -> dict[str, Any]:
        """The item with its self, root and collection links on this API."""
        root = self.url
        own = f"{root}/collections/{it.get('collection')}/items/{it['id']}"
        links = [ln for ln in it.get("links", []) if ln.get("rel") not in ("self", "root", "collection", "parent")]
        links += [{"rel": "self", "href": own, "type": "application/geo+json"},
                  {"rel": "root", "href": root, "type": "application/json"},
                  {"rel": "collection", "href": f"{root}/collections/{it.get('collection')}"}]
        return {**it, "links": links}

    def _item(self, method, path, query, body):
        iid = path.rsplit("/", 1)[-1]
        for it in self.items:
            if it["id"] == iid:
                return self._json(self._linked(it), ctype="application/geo+json")
        return self._json({"code": "NotFound"}, 404)

    def _search(self, method, path, query, body):
        if method == "POST":
            params = json.loads(body or b"{}")
        else:
            params = {k: v[0] for k, v in query.items()}
            for k in ("collections", "ids"):
                if isinstance(params.get(k), str):
                    params[k] = params[k].split(",")
            if isinstance(params.get("bbox"), str):
                params["bbox"] = [float(v) for v in params["bbox"].split(",")]
            if isinstance(params.get("intersects"), str):
                params["intersects"] = json.loads(params["intersects"])
        self.searches.append(params)
        hits = [self._linked(it) for it in self.items if _matches(it, params, self.by_bbox)]
        hits.sort(key=lambda it: it["properties"].get("datetime", ""), reverse=True)
        limit = int(params.get("limit") or 10)
        start = int(params.get("token") or 0)
        page = hits[start:start + limit]
        links = []
        if start + limit < len(hits):
            nxt = {**params, "token": str(start + limit)}
            links.append({"rel": "next", "href": self.url + "/search", "method": "POST", "body": nxt,
                          "type": "application/geo+json"})
        return self._json({"type": "FeatureCollection", "features": page, "links": links,
                           "numberMatched": len(hits), "numberReturned": len(page)},
                          ctype="application/geo+json")


def _matches(item: dict[str, Any], params: dict[str, Any], by_bbox: bool = False) -> bool:
    from shapely.geometry import box, shape

    if params.get("collections") and item.get("collection") not in params["collections"]:
        return False
    if params.get("ids") and item["id"] not in params["ids"]:
        return False
    dt = params.get("datetime")
    if dt:
        when = item["properties"].get("datetime", "")[:19]
        lo, _, hi = str(dt).partition("/")
        if lo not in ("", "..") and when < lo[:19]:
            return False
        if hi not in ("", "..") and when > hi[:19]:
            return False
        if not hi and not _ and when[:10] != lo[:10]:
            return False
    geom = box(*item["bbox"][:4]) if by_bbox else shape(item["geometry"])
    if params.get("bbox") and not geom.intersects(box(*params["bbox"][:4])):
        return False
    if params.get("intersects") and not geom.intersects(shape(params["intersects"])):
        return False
    return True

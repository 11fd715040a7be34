#!/usr/bin/env python3
"""A development aid only, NOT a test of the ops service: serves the console's static files
(services/ops/console/) and a canned, slowly changing imitation of its JSON API on loopback, so the page and
tests/console/console_check.mjs can be worked on without Kafka or the C++ build.

    python3 tests/console/dev_server.py [--port 8765]
    node tests/console/console_check.mjs --url http://127.0.0.1:8765/ \
        --expect tests/console/dev_expect.json --screenshot /tmp/console.png

GET /api/overview: six organisations of deploy/local/network.yaml (GGD's waiting/overdue and the inbox lags
change every few seconds; MJD's, the Salvation Army's and Terwille's figures stay put, for dev_expect.json),
two unroutable needs and one dead letter. POST /api/reassign: answers like the real one (202, or 400/404/409
with {"error": ...}); an accepted reassignment shows as reassigned_to in the next overview. Python's standard
library only.
"""

import argparse
import json
import math
import threading
import time
from datetime import datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONSOLE_DIR = (Path(__file__).resolve().parent / ".." / ".." / "services" / "ops" / "console").resolve()
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

ORGANISATIONS = [
    ("gemeente", "Gemeente Groningen"),
    ("leger-des-heils", "Leger des Heils"),
    ("terwille", "Terwille"),
    ("overweeghuis", "Het Overweeghuis"),
    ("ggd", "GGD Groningen"),
    ("mjd", "MJD Groningen"),
]

START = time.monotonic()
LOCK = threading.Lock()
REASSIGNED = {}  # (referral_id, need_index) -> organisation, shown from the next overview on
PENDING = {}  # accepted, not shown yet


def iso(moment):
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def canned_unroutable(now):
    return [
        {
            "referral_id": "r-5c1e0a9d7b3f42e6a18c90d4",
            "need_index": 2,
            "need_code": "housing",
            "urgency": "URGENCY_NORMAL",
            "region": "groningen-stad",
            "referring_organisation": "gemeente",
            "at": iso(now - timedelta(minutes=7, seconds=12)),
            "passed_over": [
                {"organisation": "leger-des-heils", "reason": "at capacity (40 open)"},
                {"organisation": "terwille", "reason": "does not serve need 'housing'"},
                {"organisation": "overweeghuis", "reason": "does not serve need 'housing'"},
                {"organisation": "gemeente", "reason": "not named in the client's sharing permission"},
                {"organisation": "", "reason": "does not serve need 'housing' (2 organisations)"},
            ],
            "reassigned_to": "",
        },
        {
            "referral_id": "r-a07d3e6b2c914f58b0e1d7c3",
            "need_index": 0,
            "need_code": "debt",
            "urgency": "URGENCY_URGENT",
            "region": "groningen-ommeland",
            "referring_organisation": "terwille",
            "at": iso(now - timedelta(seconds=41)),
            "passed_over": [
                {"organisation": "mjd", "reason": "offered (a-a07d3e6b2c914f58b0e1d7c3-0): not accepted in time"},
            ],
            "reassigned_to": "",
        },
    ]


def overview():
    now = datetime.now(timezone.utc)
    t = time.monotonic() - START
    phase = int(t // 5)  # figures that move change every five seconds
    ggd_overdue = (phase + 1) % 3  # 1, 2, 0, 1, …
    figures = {
        "gemeente": (2, 0, 5, 3, 41, phase % 4, 0.8, 0.6),
        "leger-des-heils": (1, 0, 7, 12, 96, 0, 1.2, 1.0),
        "terwille": (0, 0, 2, 4, 17, 0, 0.2, 0.2),
        "overweeghuis": (0, 0, 1, 2, 6, -1, 0.0, 0.0),
        "ggd": (2 + ggd_overdue, ggd_overdue, 3, 6, 58, (phase * 7) % 23, 0.6, 0.4),
        "mjd": (1, 0, 2, 1, 4, 0, 0.4 + 0.1 * math.sin(t / 10), 0.2),
    }
    organisations = []
    for org_id, name in ORGANISATIONS:
        waiting, overdue, accepted, in_progress, done, lag, offered_pm, accepted_pm = figures[org_id]
        organisations.append({
            "id": org_id, "name": name, "waiting": waiting, "overdue": overdue, "accepted": accepted,
            "in_progress": in_progress, "done": done, "lag": lag,
            "offered_per_minute": round(offered_pm, 2), "accepted_per_minute": round(accepted_pm, 2),
        })
    with LOCK:
        REASSIGNED.update(PENDING)
        PENDING.clear()
        unroutable = canned_unroutable(now)
        for row in unroutable:
            row["reassigned_to"] = REASSIGNED.get((row["referral_id"], row["need_index"]), "")
    return {
        "generated_at": iso(now),
        "kafka": {"reachable": True, "bootstrap": "127.0.0.1:9092"},
        "organisations": organisations,
        "unroutable": unroutable,
        "dead_letters": [{
            "key": "schakel.inbox.mjd/0/12", "topic": "schakel.inbox.mjd", "partition": 0, "offset": 12,
            "consumer": "inbox-mjd", "reason": "undecodable InboxEvent", "at": iso(now - timedelta(minutes=42)),
        }],
    }


def reassign(body):
    """Returns (status, answer) for a POST /api/reassign body, as the real service would."""
    try:
        request = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError):
        return HTTPStatus.BAD_REQUEST, {"error": "body: not JSON"}
    if not isinstance(request, dict):
        return HTTPStatus.BAD_REQUEST, {"error": "body: not a JSON object"}
    referral_id = request.get("referral_id")
    need_index = request.get("need_index")
    organisation = request.get("organisation")
    reason = request.get("reason")
    if not isinstance(referral_id, str) or not referral_id:
        return HTTPStatus.BAD_REQUEST, {"error": "referral_id: required"}
    if not isinstance(need_index, int) or isinstance(need_index, bool) or need_index < 0:
        return HTTPStatus.BAD_REQUEST, {"error": "need_index: must be a number, 0 or more"}
    if not isinstance(reason, str) or not reason.strip():
        return HTTPStatus.BAD_REQUEST, {"error": "reason: required"}
    if organisation not in {org_id for org_id, _ in ORGANISATIONS}:
        return HTTPStatus.BAD_REQUEST, {"error": f"organisation: '{organisation}' is not in the network"}
    key = (referral_id, need_index)
    if key not in {(r["referral_id"], r["need_index"]) for r in canned_unroutable(datetime.now(timezone.utc))}:
        return HTTPStatus.NOT_FOUND, {"error": f"{referral_id} need {need_index}: not in the unroutable queue"}
    with LOCK:
        if key in REASSIGNED or key in PENDING:
            return HTTPStatus.CONFLICT, {"error": f"{referral_id} need {need_index}: already reassigned"}
        PENDING[key] = organisation
    return HTTPStatus.ACCEPTED, {"requested": True}


class Handler(BaseHTTPRequestHandler):
    server_version = "schakel-console-dev"

    def send_body(self, status, content_type, data):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status, value):
        self.send_body(status, "application/json", json.dumps(value).encode())

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/api/overview":
            self.send_json(HTTPStatus.OK, overview())
            return
        name = "index.html" if path == "/" else path.lstrip("/")
        file = (CONSOLE_DIR / name).resolve()
        if file.parent != CONSOLE_DIR or not file.is_file() or file.suffix not in CONTENT_TYPES:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"not found: {path}"})
            return
        self.send_body(HTTPStatus.OK, CONTENT_TYPES[file.suffix], file.read_bytes())

    def do_POST(self):
        if self.path.split("?", 1)[0] != "/api/reassign":
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"not found: {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        status, answer = reassign(self.rfile.read(length) if length > 0 else b"")
        self.send_json(status, answer)

    def log_request(self, code="-", size="-"):  # quiet: only failures of the static files
        if str(getattr(code, "value", code)).startswith(("4", "5")) and not self.path.startswith("/api/"):
            super().log_request(code, size)

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free one)")
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"console dev server (development aid, not the ops service): "
          f"http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

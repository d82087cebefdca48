"""The simulator building blocks: simulated time, atomic files, servers that leave nothing behind."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request

import pytest

from fixtures import BackgroundServer, SimClock, atomic_write_json, atomic_write_text
from fixtures.health_server import HealthServer


def get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        body = error.read()
        return error.code, json.loads(body) if body.startswith(b"{") else {}


class TestSimClock:
    def test_frozen_clock_moves_only_when_advanced(self):
        clock = SimClock(time_scale=0)
        assert clock.now() == 0
        assert clock.advance(90) == 90
        assert clock.now() == 90

    def test_time_scale_compresses_time(self):
        clock = SimClock(time_scale=1000)
        threading.Event().wait(0.02)
        assert clock.now() >= 20

    def test_rejects_negative_values(self):
        with pytest.raises(ValueError):
            SimClock(time_scale=-1)
        with pytest.raises(ValueError):
            SimClock().advance(-5)


class TestAtomicWrites:
    def test_writes_and_leaves_no_temp_file(self, tmp_path):
        atomic_write_json(tmp_path / "db" / "orders.json", {"orders": []})
        assert json.loads((tmp_path / "db" / "orders.json").read_text()) == {"orders": []}
        assert [p.name for p in (tmp_path / "db").iterdir()] == ["orders.json"]

    def test_reader_never_sees_half_a_file(self, tmp_path):
        path = tmp_path / "big.json"
        payloads = [json.dumps({"n": n, "pad": "x" * 200_000}) for n in range(2)]
        atomic_write_text(path, payloads[0])
        stop = threading.Event()
        seen_bad = []

        def read_loop():
            while not stop.is_set():
                text = path.read_text()
                if text not in payloads:
                    seen_bad.append(len(text))

        reader = threading.Thread(target=read_loop)
        reader.start()
        for n in range(60):
            atomic_write_text(path, payloads[n % 2])
        stop.set()
        reader.join()
        assert seen_bad == []


class TestBackgroundServer:
    def test_binds_free_port_and_releases_it(self):
        from aiohttp import web

        async def hello(request: web.Request) -> web.Response:
            return web.json_response({"ok": True})

        def app():
            application = web.Application()
            application.router.add_get("/", hello)
            return application

        with BackgroundServer(app) as server:
            assert server.port and server.port != 0
            assert get(server.url + "/") == (200, {"ok": True})
            port = server.port
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert not any(t.name == "BackgroundServer-server" for t in threading.enumerate())

    def test_busy_port_is_a_clear_error(self, health_server):
        with pytest.raises(RuntimeError, match=f"could not listen on 127.0.0.1:{health_server.port}"):
            HealthServer(port=health_server.port).start()


class TestHealthServer:
    def test_cycle_follows_the_clock(self, health_server, sim_clock):
        assert get(health_server.health_url)[1]["status"] == "healthy"
        sim_clock.advance(60)
        status, body = get(health_server.health_url)
        assert (status, body["status"]) == (503, "maintenance")
        sim_clock.advance(60)
        status, body = get(health_server.health_url)
        assert (status, body["status"], body["version"]) == (200, "healthy", "1.0")
        assert "timestamp" in body

    def test_force_version_and_404(self, health_server):
        health_server.force("maintenance")
        assert get(health_server.health_url)[0] == 503
        health_server.force(None)
        health_server.version = "2.0"
        assert get(health_server.health_url)[1]["version"] == "2.0"
        assert get(health_server.url + "/api/other")[0] == 404

    def test_auth_and_recorded_headers(self, health_server):
        health_server.require_bearer("s3cret")
        assert get(health_server.health_url)[0] == 401
        assert get(health_server.health_url, {"Authorization": "Bearer s3cret"})[0] == 200
        health_server.require_basic("ann", "pw")
        assert get(health_server.health_url, {"Authorization": "Basic YW5uOnB3"})[0] == 200
        assert health_server.received_headers[1]["Authorization"] == "Bearer s3cret"

    def test_latency_queued_responses_and_dropped_connections(self, health_server):
        health_server.latency = 0.3
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            get(health_server.health_url, timeout=0.1)
        health_server.latency = 0
        health_server.queue_response(200, "{not json")
        request = urllib.request.urlopen(health_server.health_url, timeout=5)
        assert request.read() == b"{not json"
        health_server.drop_connections = True
        with pytest.raises((ConnectionError, urllib.error.URLError, OSError)):
            get(health_server.health_url)

"""Console pages with a year of history versus one night: the call log and the fax register.

Both databases hold the same night (bench_report's synthetic rows); the year one adds
~200,000 calls and ~10,000 faxes before it. Each page is fetched through the real ASGI
application (signed in, templates rendered) ``--repeat`` times; prints p50/p95 per page
and the ratio year/night of the p95 (≈1 is the goal: every list is bounded by an index
and a LIMIT).

    python benchmarks/bench_console.py [--calls 200000] [--faxes 10000] [--repeat 40]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import fill  # noqa: E402

from gateway.clock import SystemClock  # noqa: E402
from gateway.config import Config, DutyConfig, PathsConfig  # noqa: E402
from gateway.web.accounts import add_user  # noqa: E402
from gateway.web.app import Console  # noqa: E402
from gateway.web.site import build_app  # noqa: E402
from storage.db import Database, open_database  # noqa: E402

PAGES = ("/calls", "/calls?missed=1", "/calls?unknown=1", "/calls?day=2026-11-21", "/faxes", "/faxes?unsigned=1")
PASSWORD = "bench-password"


def timings(db: Database, folder: Path, repeat: int) -> dict[str, list[float]]:
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

    config = Config(duty=DutyConfig(numbers=["02787654321"], extensions=["8001", "8002"]), paths=PathsConfig(data_dir=folder))
    with db.session() as session:
        add_user(session, "bench", "leader", PASSWORD, SystemClock().now())
    out: dict[str, list[float]] = {}
    with TestClient(build_app(Console(config, db, SystemClock()))) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
        client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token, "next": "/"})
        for path in PAGES:
            client.get(path)  # warm
            times = []
            for _ in range(repeat):
                began = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - began)
                assert response.status_code == 200, (path, response.status_code)
            out[path] = times
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--faxes", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=40)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, calls, faxes in (("night", 0, 0), ("year", args.calls, args.faxes)):
            db = open_database(f"sqlite:///{Path(folder) / name}.sqlite")
            began = time.perf_counter()
            fill(db, history_calls=calls, history_faxes=faxes)
            print(f"{name}: filled in {time.perf_counter() - began:.1f} s", flush=True)
            results[name] = timings(db, Path(folder) / name, args.repeat)
            db.dispose()
    print(f"{'page':28} {'night p50':>10} {'night p95':>10} {'year p50':>10} {'year p95':>10} {'ratio p95':>10}")
    for path in PAGES:
        night, year = results["night"][path], results["year"][path]
        print(f"{path:28} {statistics.median(night) * 1000:9.1f}ms {p95(night) * 1000:9.1f}ms "
              f"{statistics.median(year) * 1000:9.1f}ms {p95(year) * 1000:9.1f}ms {p95(year) / p95(night):10.2f}")


if __name__ == "__main__":
    main()

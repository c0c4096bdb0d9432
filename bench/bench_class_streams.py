"""A lecture hall's worth of lecturer streams: `convscope serve` on loopback with a class of 120 students
(each with a model), predictions timed idle, then with 200 lecturer streams of that class open.

    .venv/bin/python bench/bench_class_streams.py                 # 2 web workers, 120 members, 200 streams
    .venv/bin/python bench/bench_class_streams.py --streams 400 --members 200

It prints predict's p50 and p90 idle and under the streams, and their ratio (the target: p90 within 2x
of idle), with the server's CPU time per second while the streams are open. Every process it starts is
stopped at the end; only loopback is used.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

import httpx
from servers import client_for, cpu_seconds, percentile, predict_latencies, serving


def make_class(url: str, members: int) -> tuple[httpx.Client, str]:
    """A class with ``members`` students, each holding a copy of LeNet (a finished model to list)."""
    lecturer = client_for(url)
    made = lecturer.post("/api/classes", json={"name": "a lecture hall"}).json()
    for k in range(members):
        student = client_for(url)
        student.post("/api/classes/join", json={"code": made["code"], "name": f"Student {k}"}).raise_for_status()
        student.post("/api/models/lenet/copy").raise_for_status()
    return lecturer, made["id"]


async def hold_streams(url: str, token: str, class_id: str, count: int, stop: asyncio.Event) -> int:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    opened = 0
    async with httpx.AsyncClient(base_url=url, timeout=None, limits=limits) as client:

        async def one() -> None:
            nonlocal opened
            headers = {"Authorization": f"Bearer {token}"}
            async with client.stream("GET", f"/api/classes/{class_id}/events", headers=headers) as response:
                response.raise_for_status()
                opened += 1
                async for _ in response.aiter_lines():
                    if stop.is_set():
                        return

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return opened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=120)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    caps = {"CONVSCOPE_MAX_STREAMS_PER_WORKSPACE": "1000", "CONVSCOPE_MAX_STREAMS_PER_ADDRESS": "5000"}
    with tempfile.TemporaryDirectory() as data_dir, serving(data_dir, args.workers, **caps) as (url, server):
        lecturer, class_id = make_class(url, args.members)
        idle = predict_latencies(url, args.requests)
        token = lecturer.headers["Authorization"].split()[1]

        async def under_streams() -> tuple[list[float], int, float]:
            stop = asyncio.Event()
            holder = asyncio.create_task(hold_streams(url, token, class_id, args.streams, stop))
            await asyncio.sleep(5)  # every stream open and its first view sent
            cpu_before, clock = cpu_seconds(server.pid), time.monotonic()
            times = await asyncio.to_thread(predict_latencies, url, args.requests)
            load = (cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - clock)
            stop.set()
            return times, await holder, load

        busy, opened, load = asyncio.run(under_streams())
    print(f"class of {args.members} members, {opened} of {args.streams} lecturer streams open, {args.workers} workers")
    print(f"predict idle:         p50 {percentile(idle, 0.5):6.1f} ms   p90 {percentile(idle, 0.9):6.1f} ms")
    print(f"predict with streams: p50 {percentile(busy, 0.5):6.1f} ms   p90 {percentile(busy, 0.9):6.1f} ms")
    print(f"p90 ratio {percentile(busy, 0.9) / percentile(idle, 0.9):.2f}x (target <= 2x); server CPU {load:.2f} cores")
    print(f"median ratio {statistics.median(busy) / statistics.median(idle):.2f}x")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A shaped link in user space, for the benchmarks: a TCP proxy that gives every byte a one-way delay and a
shared rate per direction, like a laptop's VPN to a cloud cluster. This machine's kernel has no netem, and
the launcher's TLS to the API server passes through untouched (the proxy only moves bytes).

    slowlink.py --upstream 127.0.0.1:6443 --rtt-ms 30 --rate-mbit 100 --port-file FILE

Listens on 127.0.0.1 (a free port, written to --port-file once listening) and runs until killed. A chunk read
from one side leaves the link's serializer when the direction's earlier bytes have gone out at the rate, and
arrives RTT/2 later; one direction's connections share its rate, as on one link. Counts of connections and of bytes
each way go to --stats-file as JSON on SIGUSR1 and at exit (SIGTERM).
"""
import argparse
import asyncio
import json
import os
import signal
import time


class Direction:
    """One direction of the link: its serializer's next free time and the bytes it carried."""

    def __init__(self, rate_bps, delay_s):
        self.rate_bps = rate_bps
        self.delay_s = delay_s
        self.free_at = 0.0
        self.bytes = 0

    def schedule(self, n):
        """When n bytes read now arrive at the far side."""
        now = time.monotonic()
        start = max(now, self.free_at)
        self.free_at = start + n * 8 / self.rate_bps
        self.bytes += n
        return self.free_at + self.delay_s


async def pump(reader, writer, direction):
    # Chunks in flight, each with its arrival time; the writer side releases them in order.
    queue = asyncio.Queue(maxsize=512)

    async def deliver():
        while True:
            item = await queue.get()
            if item is None:
                break
            at, data = item
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass

    out = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await queue.put((direction.schedule(len(data)), data))
    except (ConnectionError, OSError):
        pass
    await queue.put(None)
    try:
        await out
    except (ConnectionError, OSError):
        pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="HOST:PORT")
    ap.add_argument("--rtt-ms", type=float, default=30.0)
    ap.add_argument("--rate-mbit", type=float, default=100.0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--stats-file")
    a = ap.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    up = Direction(a.rate_mbit * 1e6, a.rtt_ms / 2000)
    down = Direction(a.rate_mbit * 1e6, a.rtt_ms / 2000)
    conns = [0]

    async def handle(client_r, client_w):
        conns[0] += 1
        # The connect itself crosses the link: one round trip before the first byte can go.
        await asyncio.sleep(a.rtt_ms / 1000)
        try:
            server_r, server_w = await asyncio.open_connection(host, int(port))
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pump(client_r, server_w, up), pump(server_r, client_w, down))
        for w in (client_w, server_w):
            w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    os.replace(a.port_file + ".tmp", a.port_file)

    def stats():
        if a.stats_file:
            with open(a.stats_file + ".tmp", "w") as f:
                json.dump({"connections": conns[0], "bytes_up": up.bytes, "bytes_down": down.bytes}, f)
            os.replace(a.stats_file + ".tmp", a.stats_file)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, stats)
    async with server:
        await stop.wait()
    stats()


if __name__ == "__main__":
    asyncio.run(main())

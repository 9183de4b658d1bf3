#!/usr/bin/python3
"""delay-proxy.py - a TCP proxy on loopback that delays every byte by a fixed
time in each direction (netem is not available on this kernel).

    tools/delay-proxy.py LISTEN_PORT TARGET_PORT [ONE_WAY_MS] [--stats FILE]

RTT = 2 * ONE_WAY_MS (default 50 ms, i.e. 100 ms RTT; 0 is a plain counting
proxy). Order is kept; the bandwidth is whatever Python moves. Loopback only.
Stop it with SIGTERM.

--stats FILE: count the bytes moved in each direction ("up": client to
target, "down": target to client, as forwarded) and the connections
accepted; on SIGUSR1 and on SIGTERM write them to FILE as one JSON object
{"seq", "up", "down", "connections"} (written whole, then renamed into
place; "seq" counts the writes, so a reader can wait for a fresh one).
"""
import asyncio
import json
import os
import signal
import sys
import time

STATS = {"up": 0, "down": 0, "connections": 0, "seq": 0}


def write_stats(path):
    STATS["seq"] += 1
    tmp = "%s.tmp%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(STATS, f)
    os.replace(tmp, path)


async def pump(reader, writer, delay, key):
    q = asyncio.Queue()

    async def sender():
        while True:
            due, data = await q.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
            STATS[key] += len(data)
        writer.close()

    task = asyncio.ensure_future(sender())
    try:
        while True:
            data = await reader.read(256 * 1024)
            if not data:
                break
            await q.put((time.monotonic() + delay, data))
    finally:
        await q.put((0, None))
        await task


async def main(listen, target, delay, stats=None):
    async def handle(cr, cw):
        STATS["connections"] += 1
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, tw, delay, "up"), pump(tr, cw, delay, "down"),
                             return_exceptions=True)

    if stats:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        loop.add_signal_handler(signal.SIGUSR1, write_stats, stats)
        loop.add_signal_handler(signal.SIGTERM, done.set_result, None)
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    if stats:
        async with server:
            await done
        write_stats(stats)
        return
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    args = sys.argv[1:]
    stats = None
    if "--stats" in args:
        i = args.index("--stats")
        if i + 1 >= len(args):
            sys.exit(__doc__)
        stats = args[i + 1]
        del args[i:i + 2]
    if len(args) < 2:
        sys.exit(__doc__)
    ms = float(args[2]) if len(args) > 2 else 50.0
    asyncio.run(main(int(args[0]), int(args[1]), ms / 1000.0, stats))

#!/usr/bin/python3
"""delay-proxy.py - a TCP proxy on loopback that delays every byte by a fixed
time in each direction (netem is not available on this kernel).

    tools/delay-proxy.py LISTEN_PORT TARGET_PORT [ONE_WAY_MS]

RTT = 2 * ONE_WAY_MS (default 50 ms, i.e. 100 ms RTT). Order is kept; the
bandwidth is whatever Python moves. Loopback only. Stop it with SIGTERM.
"""
import asyncio
import sys
import time


async def pump(reader, writer, delay):
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


async def main(listen, target, delay):
    async def handle(cr, cw):
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, tw, delay), pump(tr, cw, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    ms = float(sys.argv[3]) if len(sys.argv) > 3 else 50.0
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), ms / 1000.0))

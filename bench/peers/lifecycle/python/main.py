"""Lifecycle benchmark, Python peer.

10 background services (asyncio tasks), each looping on its cancellation
token (an asyncio.Event) with a 1 s interval; SIGTERM, SIGINT or SIGQUIT sets
the event, the services return, main waits for them and exits 0. Prints the
same lifetime lines as hostkit, on stderr. Run as `python3 main.py` with the
real interpreter (bench/run resolves pyenv shims). Standard library only.
"""
import asyncio
import os
import signal
import sys

SERVICES = 10
INTERVAL_S = 1.0


async def service(stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await asyncio.wait_for(stopping.wait(), INTERVAL_S)
        except asyncio.TimeoutError:
            pass  # one unit of (no) work per interval


async def main() -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        loop.add_signal_handler(sig, stopping.set)

    tasks = [asyncio.create_task(service(stopping)) for _ in range(SERVICES)]
    sys.stderr.write("info: lifetime[0] Application started. Press Ctrl+C to shut down.\n"
                     "info: lifetime[0] Hosting environment: Production\n"
                     f"info: lifetime[0] Content root path: {os.getcwd()}\n")
    sys.stderr.flush()

    await stopping.wait()
    sys.stderr.write("info: lifetime[0] Application is shutting down...\n")
    sys.stderr.flush()
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    asyncio.run(main())

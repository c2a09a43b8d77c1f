"""bench/run.sh grpc's reference: a Python grpcio (asyncio) client calling
shop.v1.Catalog/GetProduct as fast as CONCURRENCY callers can for SECONDS, each on
a channel (an HTTP/2 connection) of its own as each swarm user is, the request
pre-encoded (no stubs, no protoc), each reply checked for a non-empty body.

    python3 bench/grpc_client.py HOST:PORT CONCURRENCY SECONDS

Prints "requests failures seconds" on its first line, as the other loops do.
"""

import asyncio
import sys
import time

import grpc

# GetProductRequest { id: 7 }: field 1, varint 7.
REQUEST = b"\x08\x07"


async def main(target: str, concurrency: int, seconds: float) -> None:
    counts = [0, 0]
    end = time.monotonic() + seconds

    async def caller() -> None:
        async with grpc.aio.insecure_channel(target) as channel:
            call = channel.unary_unary("/shop.v1.Catalog/GetProduct")
            while time.monotonic() < end:
                try:
                    reply = await call(REQUEST)
                    counts[0 if reply else 1] += 1
                except grpc.aio.AioRpcError:
                    counts[1] += 1

    started = time.monotonic()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    took = time.monotonic() - started
    print(f"{counts[0] + counts[1]} {counts[1]} {took:.3f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))

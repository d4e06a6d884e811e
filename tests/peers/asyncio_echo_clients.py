"""N concurrent clients, each sending M messages of varying size to an echo
server and checking every echo; prints a summary, exits 1 on any error."""
import asyncio
import hashlib
import sys


async def client(host, port, ident, rounds, errors):
    try:
        reader, writer = await asyncio.open_connection(host, port)
        for r in range(rounds):
            size = 16 + (ident * 131 + r * 977) % 8000
            msg = hashlib.sha256(f"{ident}/{r}".encode()).digest() * (size // 32 + 1)
            msg = msg[:size]
            writer.write(msg)
            await writer.drain()
            got = await reader.readexactly(len(msg))
            if got != msg:
                errors.append(f"client {ident} round {r}: corrupted echo")
                break
        writer.close()
        await writer.wait_closed()
    except Exception as e:  # noqa: BLE001 - any failure is a test failure
        errors.append(f"client {ident}: {e!r}")


async def main(host, port, n, rounds):
    errors = []
    await asyncio.gather(*(client(host, port, i, rounds, errors) for i in range(n)))
    print(f"{n} clients x {rounds} rounds: {len(errors)} errors", flush=True)
    for e in errors[:10]:
        print(e)
    return 1 if errors else 0


sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))

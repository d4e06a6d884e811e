"""An asyncio TCP echo server (the program under test runs it unmodified)."""
import asyncio
import sys


async def handle(reader, writer):
    while True:
        data = await reader.read(65536)
        if not data:
            break
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def main(host, port):
    server = await asyncio.start_server(handle, host, port, backlog=512)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main(sys.argv[1], int(sys.argv[2])))

#!/usr/bin/env python3
"""Start-up time of swarm: from the moment the process is spawned to the moment the
first request's bytes reach a loopback target.

Usage: startup.py RUNS COMMAND... ; the target's URL is appended to COMMAND.
Prints one line: `startup_ms min median max`."""

import socket
import statistics
import subprocess
import sys
import threading
import time

BODY = b'{"status":"ok"}'
REPLY = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
)


def one_run(command):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(10)
    port = listener.getsockname()[1]
    first = {}

    def serve():
        try:
            while True:
                conn, _ = listener.accept()
                with conn:
                    conn.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    first.setdefault("t", time.perf_counter())
                    conn.sendall(REPLY)
        except OSError:
            return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    cmd = command + ["http://127.0.0.1:%d" % port]
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    listener.close()
    if "t" not in first:
        raise SystemExit("swarm sent no request (exit code %d)" % proc.returncode)
    return (first["t"] - start) * 1000.0


def main():
    runs, command = int(sys.argv[1]), sys.argv[2:]
    times = sorted(one_run(command) for _ in range(runs))
    print("startup_ms %.1f %.1f %.1f" % (times[0], statistics.median(times), times[-1]))


if __name__ == "__main__":
    main()

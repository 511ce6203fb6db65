"""Hostile Python guest (componentize-py, world xcom-processor): process_xcom tries to read
files, list directories, read the environment and arguments, open a socket and resolve a
name, prints to stdout and stderr, and returns what it got as JSON. Under podrun every
attempt must get nothing."""

import json
import os
import sys

from wit_world import exports


def attempt(fn):
    try:
        return {"ok": repr(fn())[:200]}
    except BaseException as e:  # noqa: BLE001 - we report whatever the sandbox raised
        return {"error": type(e).__name__}


def connect():
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect(("127.0.0.1", 22))
    return "connected"


def resolve():
    import socket

    return socket.getaddrinfo("localhost", 80)


class ProcessXcom(exports.ProcessXcom):
    def process_xcom(self, value: str, ctx: str) -> str:
        print("probe: hello from stdout")
        print("probe: hello from stderr", file=sys.stderr)
        report = {
            "read_passwd": attempt(lambda: open("/etc/passwd").read()),
            "list_root": attempt(lambda: os.listdir("/")),
            "list_cwd": attempt(lambda: os.listdir(".")),
            "environ": len(os.environ),
            "argv": len(sys.argv) if sys.argv != [""] else 0,
            "connect": attempt(connect),
            "resolve": attempt(resolve),
        }
        return json.dumps(report)

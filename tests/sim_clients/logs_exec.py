"""The Python `kubernetes` client's logs and exec (websocket stream) against a running pod
named in argv[1]; prints one JSON line of findings for tests/sim_clients.rs."""
import json
import sys

from kubernetes import client, config
from kubernetes.stream import stream

config.load_kube_config()
v1 = client.CoreV1Api()
name = sys.argv[1]
out = {}
out["logs"] = v1.read_namespaced_pod_log(name, "default")
out["tail"] = v1.read_namespaced_pod_log(name, "default", tail_lines=1)
resp = stream(v1.connect_get_namespaced_pod_exec, name, "default",
              command=["sh", "-c", "echo exec-out; echo exec-err >&2; exit 4"],
              stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
resp.run_forever(timeout=10)
out["exec_stdout"] = resp.read_stdout()
out["exec_stderr"] = resp.read_stderr()
out["exec_code"] = resp.returncode

resp = stream(v1.connect_get_namespaced_pod_exec, name, "default", command=["cat"],
              stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
resp.write_stdin("from python\n")
got = ""
while resp.is_open() and "from python" not in got:
    resp.update(timeout=1)
    got += resp.read_stdout() or ""
resp.close()
out["stdin_echo"] = got
follow = v1.read_namespaced_pod_log(name, "default", follow=True, _preload_content=False)
out["follow"] = b"".join(follow.stream()).decode()

print(json.dumps(out))

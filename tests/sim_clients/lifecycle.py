"""The Python `kubernetes` client following a real pod's lifecycle on the simulator's
kubelet: watch to Running, exec through the websocket stream, follow logs to the end,
watch to Succeeded, delete. Prints one JSON line for tests/sim_clients.rs."""
import json

from kubernetes import client, config, watch
from kubernetes.stream import stream

config.load_kube_config()
v1 = client.CoreV1Api()
out = {"phases": []}
pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "py-life"},
    "spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo py-a; sleep 2; echo py-b"]}]},
}
created = v1.create_namespaced_pod("default", pod)
w = watch.Watch()
for ev in w.stream(v1.list_namespaced_pod, "default", field_selector="metadata.name=py-life",
                   resource_version=created.metadata.resource_version, timeout_seconds=30):
    phase = ev["object"].status.phase
    if not out["phases"] or out["phases"][-1] != phase:
        out["phases"].append(phase)
    if phase == "Running":
        w.stop()
resp = stream(v1.connect_get_namespaced_pod_exec, "py-life", "default",
              command=["sh", "-c", "echo from-exec; exit 2"], stderr=True, stdin=False,
              stdout=True, tty=False, _preload_content=False)
resp.run_forever(timeout=10)
out["exec_stdout"] = resp.read_stdout()
out["exec_code"] = resp.returncode
follow = v1.read_namespaced_pod_log("py-life", "default", follow=True, _preload_content=False)
out["follow"] = b"".join(follow.stream()).decode()
for ev in w.stream(v1.list_namespaced_pod, "default", field_selector="metadata.name=py-life",
                   timeout_seconds=30):
    phase = ev["object"].status.phase
    if out["phases"][-1] != phase:
        out["phases"].append(phase)
    if phase in ("Succeeded", "Failed"):
        w.stop()
v1.delete_namespaced_pod("py-life", "default")
print(json.dumps(out))

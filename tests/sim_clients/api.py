"""The Python `kubernetes` client against the simulator (API-level behaviour).

Run by tests/sim_clients.rs with KUBECONFIG set; prints one JSON line of findings that the
Rust test asserts on, and exits non-zero on any unexpected exception.
"""
import json
import threading

from kubernetes import client, config, watch

config.load_kube_config()
v1 = client.CoreV1Api()
out = {}

out["namespaces"] = sorted(n.metadata.name for n in v1.list_namespace().items)

pod = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "py-pod", "labels": {"app": "py"}},
    "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "5"]}]},
}
created = v1.create_namespaced_pod("default", pod)
out["dns_policy"] = created.spec.dns_policy
out["qos"] = created.status.qos_class

try:
    v1.create_namespaced_pod("default", pod)
except client.ApiException as e:
    out["conflict"] = [e.status, json.loads(e.body)["reason"]]

try:
    v1.read_namespaced_pod("missing", "default")
except client.ApiException as e:
    out["not_found"] = [e.status, json.loads(e.body)["message"]]

# Watch from the list's resourceVersion while another thread changes the pod.
rv = v1.list_namespaced_pod("default").metadata.resource_version


def change():
    v1.patch_namespaced_pod("py-pod", "default", {"metadata": {"labels": {"step": "2"}}})
    v1.delete_namespaced_pod("py-pod", "default")


threading.Timer(0.3, change).start()
seen = []
w = watch.Watch()
for ev in w.stream(v1.list_namespaced_pod, "default", resource_version=rv,
                   label_selector="app=py", timeout_seconds=5):
    seen.append(ev["type"])
    if ev["type"] == "DELETED":
        w.stop()
out["watch"] = seen
print(json.dumps(out))

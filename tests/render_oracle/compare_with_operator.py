"""Optional cross-check of `podrun render` against the real KubernetesPodOperator.

Not part of the test suite (it needs Airflow). Setup, once:

    python3 -m venv /tmp/kpo-oracle
    /tmp/kpo-oracle/bin/pip install apache-airflow-providers-cncf-kubernetes
    cargo build

Then, from the repository root:

    /tmp/kpo-oracle/bin/python tests/render_oracle/compare_with_operator.py cases tests/render
    N=300 SEED=1 /tmp/kpo-oracle/bin/python tests/render_oracle/compare_with_operator.py fuzz

`cases` builds every tests/render case with the operator and compares it with expected.yaml;
`fuzz` renders random task files with podrun and the operator and compares the pods. Both
ignore the operator's Airflow labels, podrun's labels, the random name part and secret volume
uuids. The operator's hook is replaced by a stub answering the connection extras from the task
file (sidecar image defaulting to podrun's "alpine"); rendering uses a sandboxed Jinja
environment with StrictUndefined and podrun's variables.
"""

import os, sys, json, re, copy, types
os.environ.setdefault("AIRFLOW_HOME", "/tmp/airflow-home")
os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = '{"conn_type": "kubernetes"}'
import yaml
from unittest import mock
from kubernetes.client import models as k8s, ApiClient
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.secret import Secret

api = ApiClient()

def build_model(data, klass_name):
    """Construct a model the way a user would in Python: no type coercion."""
    if data is None:
        return None
    if klass_name.startswith("list["):
        inner = klass_name[5:-1]
        return [build_model(x, inner) for x in data]
    if klass_name.startswith("dict("):
        return data
    klass = getattr(k8s, klass_name, None)
    if klass is None:
        return data
    kwargs = {}
    rev = {v: k for k, v in klass.attribute_map.items()}
    for key, val in data.items():
        attr = rev[key]
        kwargs[attr] = build_model(val, klass.openapi_types[attr])
    return klass(**kwargs)

FRAG = {"ports": "list[V1ContainerPort]", "volume_mounts": "list[V1VolumeMount]", "volumes": "list[V1Volume]",
        "env_from": "list[V1EnvFromSource]", "pod_runtime_info_envs": "list[V1EnvVar]",
        "container_resources": "V1ResourceRequirements", "host_aliases": "list[V1HostAlias]",
        "security_context": "V1PodSecurityContext", "container_security_context": "V1SecurityContext",
        "dns_config": "V1PodDNSConfig", "init_containers": "list[V1Container]", "full_pod_spec": "V1Pod"}
DROP = {"execution_timeout", "task_id", "params", "hooks", "execution_timeout", "xcom_sidecar_container_image",
        "xcom_sidecar_container_resources", "config_file", "cluster_context", "in_cluster"}

def kubeconfig_ns(task, case_dir, args):
    path = None; ctx = task.get("cluster_context")
    if task.get("config_file"): path = os.path.join(case_dir, task["config_file"])
    if "--kubeconfig" in args: path = os.path.join(case_dir, args[args.index("--kubeconfig") + 1])
    if "--context" in args: ctx = args[args.index("--context") + 1]
    if "--in-cluster" in args or not path: return None
    kc = yaml.safe_load(open(path))
    ctx = ctx or kc.get("current-context")
    for c in kc.get("contexts", []):
        if c["name"] == ctx: return c["context"].get("namespace")
    return None

def oracle(case_dir):
    task_file = os.path.join(case_dir, "task.yaml")
    if not os.path.exists(task_file): task_file = os.path.join(case_dir, "task.json")
    task = yaml.safe_load(open(task_file))
    args = open(os.path.join(case_dir, "args")).read().split("\n") if os.path.exists(os.path.join(case_dir, "args")) else []
    kw = {}
    for k, v in task.items():
        if k in DROP: continue
        if k in FRAG and v is not None and v != {}:
            v = build_model(v, FRAG[k])
        if k == "env_vars" and isinstance(v, list):
            v = [build_model(x, "V1EnvVar") for x in v]
        if k == "secrets" and v is not None:
            v = [Secret(s["deploy_type"], s.get("deploy_target"), s["secret"], s.get("key"),
                        [build_model(i, "V1KeyToPath") for i in s.get("items", [])]) for s in v]
        if k == "pod_template_file":
            v = os.path.join(case_dir, v)
        kw[k] = v
    op = KubernetesPodOperator(task_id=task["task_id"], **kw)
    hook = mock.MagicMock()
    hook.get_namespace.return_value = kubeconfig_ns(task, case_dir, args)
    img = task.get("xcom_sidecar_container_image")
    if "--xcom-sidecar-image" in args: img = args[args.index("--xcom-sidecar-image") + 1]
    # podrun's default sidecar image is the reference's "alpine" (providers >= 10.20 pin a tag).
    hook.get_xcom_sidecar_container_image.return_value = img or "alpine"
    hook.get_xcom_sidecar_container_security_context.return_value = None
    res = task.get("xcom_sidecar_container_resources")
    hook.get_xcom_sidecar_container_resources.return_value = json.loads(res) if res else None
    hook.is_in_cluster = False
    with mock.patch.object(KubernetesPodOperator, "hook", hook), \
         mock.patch.object(KubernetesPodOperator, "_incluster_namespace", None):
        params = dict(task.get("params") or {})
        vars_ = {}
        run_id, try_number = "manual__2016-01-01T00:00:00+00:00", 1
        for i, a in enumerate(args):
            if a == "--param": k, v = args[i + 1].split("=", 1); params[k] = v
            if a == "--var": k, v = args[i + 1].split("=", 1); vars_[k] = v
            if a == "--run-id": run_id = args[i + 1]
            if a == "--try-number": try_number = int(args[i + 1])
        import jinja2
        ctx = {"task_id": task["task_id"], "run_id": run_id, "try_number": try_number, "ds": "2016-01-01",
               "ds_nodash": "20160101", "ts": "2016-01-01T00:00:00+00:00", "ts_nodash": "20160101T000000",
               "params": params, "vars": vars_}
        env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, cache_size=0)
        op.render_template_fields(ctx, jinja_env=env)
        op.name = op._set_name(op.name)
        pod = op.build_pod_request_obj(context=None)
    return api.sanitize_for_serialization(pod)

def normalise(p):
    p = copy.deepcopy(p)
    labels = p["metadata"].get("labels", {})
    for k in list(labels):
        if k.startswith("podrun.dev/") or k in ("airflow_version", "airflow_kpo_in_cluster"): del labels[k]
    name = p["metadata"]["name"]
    p["metadata"]["name"] = re.sub(r"-[a-z0-9]{8}$", "-XXXXXXXX", name) if not name.endswith("-XXXXXXXX") else name
    return json.loads(re.sub(r"secretvol[0-9a-f-]{36}", "secretvol-UUID", json.dumps(p)))

def run_cases(root):
    skip = set()
    bad = 0
    for name in sorted(os.listdir(root)):
        d = os.path.join(root, name)
        if name in skip: print("SKIP", name); continue
        try:
            got = normalise(oracle(d))
        except Exception as e:
            print("ERROR", name, type(e).__name__, e); bad += 1; continue
        want = normalise(yaml.safe_load(open(os.path.join(d, "expected.yaml"))))
        if got == want: print("ok  ", name)
        else:
            bad += 1
            print("DIFF", name)
            print("  operator:", json.dumps(got, sort_keys=True))
            print("  expected:", json.dumps(want, sort_keys=True))
    print("mismatches:", bad)


import os, sys, json, random, subprocess, tempfile, copy, yaml

PODRUN = os.path.abspath("target/debug/podrun")
TEMPLATES = [None, """
metadata:
  name: tmpl-name
  labels: {t: "1", shared: tmpl}
  annotations: {ta: x}
spec:
  hostNetwork: true
  securityContext: {runAsUser: 5}
  tolerations: [{key: a, operator: Exists}]
  nodeSelector: {n: t}
  volumes: [{name: tv, emptyDir: {}}]
  initContainers: [{name: ti, image: busybox}]
  serviceAccountName: tsa
  containers:
    - name: tc
      image: timg
      command: [tcmd]
      args: [targ]
      env: [{name: TE, value: t}]
      ports: [{containerPort: 1}]
      resources: {limits: {cpu: "2"}}
    - name: side
      image: simg
""", """
spec:
  containers:
    - name: only
      image: img2
      volumeMounts: [{name: v, mountPath: /v}]
  dnsPolicy: Default
  affinity: {}
"""]
FULL = [None, {"metadata": {"labels": {"f": "1", "shared": "full"}, "namespace": "fullns"},
               "spec": {"containers": [{"name": "fc", "env": [{"name": "FE", "value": "f"}], "image": "fimg"}],
                        "priorityClassName": "fprio", "hostNetwork": False}},
        {"spec": {"containers": [{"name": "fc2"}, {"name": "fside", "image": "fs"}], "volumes": [{"name": "fv", "emptyDir": {}}]}}]
CHOICES = {
    "name": [None, "My.Pod_Name", "pod", "x" * 70, "{{ task_id }}-{{ ds_nodash }}"],
    "random_name_suffix": [None, True, False],
    "namespace": [None, "ns1", ""],
    "image": [None, "busybox"],
    "cmds": [None, [], ["sh", "-c"]],
    "arguments": [None, [], ["echo {{ task_id }}"]],
    "ports": [None, [], [{"containerPort": 80, "name": "http"}]],
    "volume_mounts": [None, [{"name": "ov", "mountPath": "/ov", "readOnly": False}]],
    "env_vars": [None, {"A": "a", "B": None}, [{"name": "L", "value": "l"}], {},
                 {"K_{{ try_number }}": "{{ ts }}"}, [{"name": "{{ ds }}", "valueFrom": {"fieldRef": {"fieldPath": "{{ x }}"}}}]],
    "annotations": [None, {"oa": "y"}, {"rendered": "{{ run_id }}"}],
    "volumes": [None, [{"name": "ov", "emptyDir": {}}],
                [{"name": "v-{{ try_number }}", "persistentVolumeClaim": {"claimName": "c-{{ ds }}"}},
                 {"name": "h", "hostPath": {"path": "/{{ ds }}"}}]],
    "env_from": [None, [{"secretRef": {"name": "es"}}]],
    "secrets": [None, [{"deploy_type": "env", "deploy_target": "sv", "secret": "s", "key": "k"}],
                [{"deploy_type": "volume", "deploy_target": "/s", "secret": "s"}, {"deploy_type": "env", "secret": "s2"}]],
    "configmaps": [None, ["c1"]],
    "pod_runtime_info_envs": [None, [{"name": "R", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]],
    "labels": [None, {}, {"shared": "op", "o": "1"}],
    "container_resources": [None, {"limits": {"cpu": 0.5, "memory": "1Gi"}}],
    "affinity": [None, {}, {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}]}}}],
    "node_selector": [None, {}, {"n": "op"}],
    "tolerations": [None, [], [{"key": "b", "operator": "Exists"}]],
    "image_pull_policy": [None, "Never"],
    "image_pull_secrets": [None, "a,b", [{"name": "c"}]],
    "service_account_name": [None, "osa"],
    "automount_service_account_token": [None, False, True],
    "hostnetwork": [None, False, True],
    "host_aliases": [None, [{"ip": "1.2.3.4", "hostnames": ["h"]}]],
    "security_context": [None, {"runAsUser": 0}],
    "container_security_context": [None, {"privileged": False}],
    "dnspolicy": [None, "ClusterFirst"],
    "dns_config": [None, {"nameservers": ["8.8.8.8"]}],
    "hostname": [None, "h"], "subdomain": [None, "sd"], "schedulername": [None, "sch"],
    "priority_class_name": [None, "p"],
    "init_containers": [None, [{"name": "oi", "image": "busybox"}]],
    "termination_message_policy": [None, "FallbackToLogsOnError"],
    "active_deadline_seconds": [None, 5],
    "termination_grace_period": [None, 0, 7],
    "do_xcom_push": [None, True, False],
    "base_container_name": [None, "main"],
}
def rand_task(rng, i):
    t = {"task_id": rng.choice(["Task_" + str(i), "t" + str(i), "A" * 80 + str(i)])}
    for k, opts in CHOICES.items():
        if rng.random() < 0.4:
            v = rng.choice(opts)
            if v is not None or rng.random() < 0.2:
                t[k] = copy.deepcopy(v)
    tmpl = rng.choice(TEMPLATES); full = rng.choice(FULL)
    if full: t["full_pod_spec"] = copy.deepcopy(full)
    if rng.random() < 0.2 and tmpl:
        t["pod_template_dict"] = yaml.safe_load(tmpl)
    return t, tmpl

def run_fuzz():
    rng = random.Random(int(os.environ.get("SEED", "1")))
    n = int(os.environ.get("N", "300")); bad = 0; skipped = 0
    for i in range(n):
        t, tmpl = rand_task(rng, i)
        d = tempfile.mkdtemp()
        if tmpl: open(os.path.join(d, "tmpl.yaml"), "w").write(tmpl); t["pod_template_file"] = "tmpl.yaml"
        open(os.path.join(d, "task.yaml"), "w").write(yaml.safe_dump(t))
        r = subprocess.run([PODRUN, "render", "task.yaml", "--logical-date", "2016-01-01", "-o", "json"], cwd=d,
                           capture_output=True, text=True, env={"KUBECONFIG": "/nonexistent"})
        try:
            op = normalise(oracle(d))
        except Exception as e:
            op = ("ERROR", type(e).__name__, str(e)[:200])
        if r.returncode != 0:
            if isinstance(op, tuple):
                skipped += 1; continue
            # podrun refuses a pod without an image, which the API server would reject.
            if "image: required" in r.stderr and not op["spec"]["containers"][0].get("image"):
                skipped += 1; continue
            # podrun refused: acceptable only for pods the API server would reject
            print("PODRUN-REFUSED", i, r.stderr.strip()[:300]); print("  task:", json.dumps(t)); bad += 1; continue
        mine = normalise(json.loads(r.stdout))
        if isinstance(op, tuple):
            print("OPERATOR-ERROR", i, op); print("  task:", json.dumps(t)); bad += 1; continue
        if mine != op:
            bad += 1
            print("DIFF", i); print("  task:", json.dumps(t))
            print("  operator:", json.dumps(op, sort_keys=True)); print("  podrun:  ", json.dumps(mine, sort_keys=True))
    print(f"{n} random tasks, {bad} mismatches, {skipped} rejected (operator error, or no image)")


if __name__ == "__main__":
    if sys.argv[1] == "cases":
        run_cases(sys.argv[2])
    else:
        run_fuzz()

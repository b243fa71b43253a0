"""Kubernetes: the manifests of each layout, validated strictly, and the CronJobs, the login pod and the claims."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.common import COMMANDS, DEPLOY, HOWTO, SECRET_SETTINGS, check_cron_schedule, missing, run, yaml

KUBERNETES_HOWTO = HOWTO / "deploy-kubernetes.md"
# The oldest Kubernetes the manifests are written for: CronJob timeZone (GA 1.27),
# ReadWriteOncePod (GA 1.29), podFailurePolicy (beta and on by default since 1.26).
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
K8S = DEPLOY / "kubernetes"
LAYOUTS = ("sqlite", "postgres")


def k8s_documents(layout: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((K8S / layout).glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    return docs


def kubernetes_validate() -> list[str]:
    if importlib.util.find_spec("kubernetes_validate") is None:
        missing("kubernetes-validate is not installed (pip install kubernetes-validate)")
    return [sys.executable, "-m", "kubernetes_validate"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("layout", [*LAYOUTS, "login", "single-node"])
def test_kubernetes_manifests_validate_strictly(layout: str, version: str) -> None:
    files = sorted(str(p) for p in (K8S / layout).glob("*.yaml"))
    result = run([*kubernetes_validate(), "--strict", "-k", version, *files])
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"passed for resource", result.stdout + result.stderr)
    assert len(passed) == len(k8s_documents(layout))  # every document was checked


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path: Path) -> None:
    docs = k8s_documents("sqlite")
    cronjob = next(d for d in docs if d["kind"] == "CronJob")
    cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFs"] = True
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cronjob))
    result = run([*kubernetes_validate(), "--strict", "-k", KUBERNETES_VERSIONS[0], str(bad)])
    assert result.returncode != 0


def cronjobs(layout: str) -> dict[str, dict[str, Any]]:
    found = {}
    for doc in k8s_documents(layout):
        if doc["kind"] == "CronJob":
            pod = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            found[pod["containers"][0]["args"][0]] = doc
    return found


def check_pod(pod: dict[str, Any], layout: str) -> None:
    """Pod security, secrets as files, settings from the ConfigMap, the layout's database."""
    docs = k8s_documents(layout)
    configmaps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    assert pod["restartPolicy"] == "Never"  # podFailurePolicy requires it
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        assert isinstance(security[key], int) and security[key] > 0, key
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for container in pod.get("initContainers", []) + pod["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["seccompProfile"]["type"] == "RuntimeDefault"
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
        env = {e["name"]: e for e in container.get("env", [])}
        assert not SECRET_SETTINGS & env.keys(), "secrets go in files, not in env"
        secret_dir = os.path.dirname(env["IG_PASSWORD_FILE"]["value"])
        secret_volume = volumes[mounts[secret_dir]["name"]]
        assert mounts[secret_dir]["readOnly"] is True
        assert "ig_password" in secrets[secret_volume["secret"]["secretName"]]["stringData"]
        assert [s["configMapRef"]["name"] in configmaps for s in container["envFrom"]] == [True]
        if layout == "sqlite":
            claim = volumes[mounts["/var/lib/story-liker"]["name"]]["persistentVolumeClaim"]["claimName"]
            assert claim == "story-liker-data"
            assert "DATABASE_URL" not in env
        else:
            assert "/var/lib/story-liker" not in mounts
            ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            url = secrets[ref["name"]]["stringData"][ref["key"]]
            assert re.fullmatch(r"postgresql://[^@/]+@[a-z0-9.-]+\.svc\.cluster\.local:5432/\w+", url), url


@pytest.mark.parametrize("layout", LAYOUTS)
def test_kubernetes_cronjobs(layout: str) -> None:
    jobs = cronjobs(layout)
    assert sorted(jobs) == sorted(COMMANDS)
    for command, job in jobs.items():
        spec = job["spec"]
        check_cron_schedule(spec["schedule"])
        assert spec["concurrencyPolicy"] == "Forbid"
        assert 0 < spec["startingDeadlineSeconds"] <= 3600
        assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
        assert spec["timeZone"]
        job_spec = spec["jobTemplate"]["spec"]
        assert 0 < job_spec["activeDeadlineSeconds"] <= 1800
        assert 0 <= job_spec["backoffLimit"] <= 3
        rules = job_spec["podFailurePolicy"]["rules"]
        fail_now = [r for r in rules if r["action"] == "FailJob" and "onExitCodes" in r]
        assert len(fail_now) == 1, rules
        assert fail_now[0]["onExitCodes"]["operator"] == "In"
        assert set(fail_now[0]["onExitCodes"]["values"]) == {77, 78}
        pod = job_spec["template"]["spec"]
        assert pod["containers"][0]["args"] == [command]
        assert [c["args"] for c in pod["initContainers"]] == [["migrate"]]
        check_pod(pod, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_kubernetes_login_pod_migrates_then_waits_for_kubectl_exec(layout: str) -> None:
    """The login runs by `kubectl exec -it` into a pod that waits, so its prompts reach the terminal (an attach
    came too late for them), after the same migrate as the CronJobs (a fresh PostgreSQL database has no schema)."""
    (pod,) = yaml.safe_load_all((K8S / "login" / f"{layout}.yaml").read_text())
    assert pod["kind"] == "Pod"
    spec = pod["spec"]
    assert [(c["name"], c["args"]) for c in spec["initContainers"]] == [("migrate", ["migrate"])]
    (container,) = spec["containers"]
    assert container["command"][:2] == ["sh", "-c"] and "sleep 3600" in container["command"][2]
    assert "args" not in container and "stdin" not in container and "tty" not in container
    check_pod(spec, layout)
    # A session exported elsewhere comes in through an optional Secret (the pod starts without it).
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["session"]["secret"] == {"secretName": "story-liker-session", "optional": True, "defaultMode": 0o440}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["session"] == {"name": "session", "mountPath": "/run/secrets/story-liker-session", "readOnly": True}
    text = (K8S / "login" / f"{layout}.yaml").read_text()
    assert "exec -it story-liker-login -- story-liker login\n" in text
    assert "story-liker session import /run/secrets/story-liker-session/session.json\n" in text
    howto = KUBERNETES_HOWTO.read_text()
    assert "kubectl -n story-liker exec -it story-liker-login -- story-liker login\n" in howto
    assert "kubectl -n story-liker attach" not in howto  # too late for the first prompt


def test_kubernetes_login_pod_waits_and_ends_at_once_on_sigterm() -> None:
    """The waiting command itself, run here: still there after a moment, gone with 0 right after a TERM (what
    `kubectl delete pod` sends), not after the grace period."""
    (pod,) = yaml.safe_load_all((K8S / "login" / "sqlite.yaml").read_text())
    command = pod["spec"]["containers"][0]["command"]
    process = subprocess.Popen(command, start_new_session=True)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1)
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
        assert time.monotonic() - began < 2
        assert pod["spec"]["terminationGracePeriodSeconds"] <= 30
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the sleep it left behind
        process.wait()


def test_kubernetes_the_cronjobs_can_be_left_out_until_the_login() -> None:
    """The how-to applies `-l '!app.kubernetes.io/component'` first: everything but the CronJobs."""
    for layout in LAYOUTS:
        for doc in k8s_documents(layout):
            labelled = "app.kubernetes.io/component" in doc["metadata"].get("labels", {})
            assert labelled == (doc["kind"] == "CronJob"), (layout, doc["kind"])
    howto = KUBERNETES_HOWTO.read_text()
    assert "kubectl apply -f deploy/kubernetes/$LAYOUT/ -l '!app.kubernetes.io/component'" in howto


def test_kubernetes_single_node_claim_is_the_sqlite_claim_with_read_write_once() -> None:
    (claim,) = yaml.safe_load_all((K8S / "single-node" / "30-pvc.yaml").read_text())
    (shipped,) = yaml.safe_load_all((K8S / "sqlite" / "30-pvc.yaml").read_text())
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == "local-path"  # k3s' default provisioner
    assert claim["metadata"] == shipped["metadata"]  # the same claim, which every pod mounts
    rest = {k: v for k, v in claim["spec"].items() if k not in ("accessModes", "storageClassName")}
    assert rest == {k: v for k, v in shipped["spec"].items() if k != "accessModes"}
    howto = KUBERNETES_HOWTO.read_text()
    assert "cp deploy/kubernetes/single-node/30-pvc.yaml deploy/kubernetes/sqlite/30-pvc.yaml" in howto


def test_kubernetes_sqlite_layout_uses_one_read_write_once_pod_volume() -> None:
    docs = k8s_documents("sqlite")
    claims = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert [c["spec"]["accessModes"] for c in claims] == [["ReadWriteOncePod"]]
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config["data"]["DATABASE_URL"] == "sqlite:////var/lib/story-liker/stories.db"
    assert not [d for d in k8s_documents("postgres") if d["kind"] == "PersistentVolumeClaim"]
    pg_config = next(d for d in k8s_documents("postgres") if d["kind"] == "ConfigMap")
    assert "DATABASE_URL" not in pg_config["data"]

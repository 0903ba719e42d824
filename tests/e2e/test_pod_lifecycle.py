"""Pod lifecycle as a user sees it through kubectl: restarts, back-off, init containers,
probes, volumes, users, graceful deletion."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import Cluster, apply, wait_for


def status(cluster: Cluster, name: str) -> dict[str, Any]:
    st: dict[str, Any] = cluster.kubectl_json("get", "pod", name).get("status") or {}
    return st


def test_crash_loop_back_off_with_previous_logs(cluster: Cluster) -> None:
    apply(cluster, """
    apiVersion: v1
    kind: Pod
    metadata: {name: crasher}
    spec:
      containers:
      - name: c
        image: busybox
        command: [sh, -c, "echo boom $(date +%s%N); exit 3"]
    """)
    try:
        def backing_off() -> Any:
            cs = (status(cluster, "crasher").get("containerStatuses") or [{}])[0]
            waiting = (cs.get("state") or {}).get("waiting") or {}
            return cs.get("restartCount", 0) >= 1 and waiting.get("reason") == \
                "CrashLoopBackOff" and cs

        cs = wait_for(backing_off, what="CrashLoopBackOff")
        assert cs["lastState"]["terminated"]["exitCode"] == 3
        assert cs["lastState"]["terminated"]["reason"] == "Error"
        table = cluster.kubectl("get", "pod", "crasher").stdout
        assert "CrashLoopBackOff" in table
        assert cluster.kubectl("logs", "crasher", "--previous").stdout.startswith("boom")
        assert status(cluster, "crasher")["phase"] == "Running"
    finally:
        cluster.kubectl("delete", "pod", "crasher", "--grace-period=0", "--wait=true",
                        timeout=60)


def test_init_containers_volumes_env_and_user(cluster: Cluster) -> None:
    apply(cluster, """
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {color: blue, app.conf: "mode=fast\\n"}
    ---
    apiVersion: v1
    kind: Secret
    metadata: {name: creds}
    stringData: {password: s3cret}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: staged, labels: {tier: demo}}
    spec:
      restartPolicy: Never
      initContainers:
      - name: prepare
        image: busybox
        command: [sh, -c, "echo prepared > /work/ready"]
        volumeMounts: [{name: work, mountPath: /work}]
      containers:
      - name: main
        image: busybox
        command: [sh, -c, "cat /work/ready; cat /config/app.conf; cat /secret/password; echo;
                  echo $COLOR $TIER; id -u; cat /podinfo/labels; echo"]
        env:
        - {name: COLOR, valueFrom: {configMapKeyRef: {name: settings, key: color}}}
        - {name: TIER, valueFrom: {fieldRef: {fieldPath: "metadata.labels['tier']"}}}
        securityContext: {runAsUser: 1000, runAsGroup: 1000}
        volumeMounts:
        - {name: work, mountPath: /work}
        - {name: config, mountPath: /config}
        - {name: secret, mountPath: /secret}
        - {name: podinfo, mountPath: /podinfo}
      volumes:
      - {name: work, emptyDir: {}}
      - {name: config, configMap: {name: settings}}
      - {name: secret, secret: {secretName: creds}}
      - name: podinfo
        downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
    """)
    try:
        wait_for(lambda: status(cluster, "staged").get("phase") == "Succeeded",
                 what="pod Succeeded")
        out = cluster.kubectl("logs", "staged", "-c", "main").stdout.splitlines()
        assert out[:6] == ["prepared", "mode=fast", "s3cret", "blue demo", "1000",
                           'tier="demo"']
        st = status(cluster, "staged")
        assert st["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
        assert cluster.kubectl("get", "pod", "staged").stdout.split()[-3] == "Completed"
    finally:
        cluster.kubectl("delete", "pod", "staged", "--wait=true", timeout=60)
        cluster.kubectl("delete", "cm", "settings")
        cluster.kubectl("delete", "secret", "creds")


def test_liveness_failure_restarts_the_container(cluster: Cluster) -> None:
    apply(cluster, """
    apiVersion: v1
    kind: Pod
    metadata: {name: unhealthy}
    spec:
      containers:
      - name: c
        image: busybox
        command: [sh, -c, "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 1000"]
        livenessProbe:
          exec: {command: [cat, /tmp/healthy]}
          periodSeconds: 1
          failureThreshold: 1
    """)
    try:
        wait_for(lambda: ((status(cluster, "unhealthy").get("containerStatuses") or [{}])[0]
                          .get("restartCount", 0) >= 1), what="a liveness restart")
    finally:
        cluster.kubectl("delete", "pod", "unhealthy", "--grace-period=0", "--wait=true",
                        timeout=60)


def test_graceful_deletion_runs_pre_stop_then_sigterm(cluster: Cluster) -> None:
    apply(cluster, """
    apiVersion: v1
    kind: Pod
    metadata: {name: graceful}
    spec:
      terminationGracePeriodSeconds: 20
      containers:
      - name: c
        image: busybox
        command:
        - sh
        - -c
        - "trap 'echo got TERM; exit 0' TERM; echo started; while true; do sleep 0.1; done"
        lifecycle:
          preStop:
            exec: {command: [sh, -c, "echo prestop > /proc/1/fd/1 2>/dev/null || true"]}
    """)
    cluster.kubectl("wait", "--for=condition=Ready", "pod/graceful", "--timeout=60s", timeout=90)
    t0 = time.monotonic()
    cluster.kubectl("delete", "pod", "graceful", "--wait=true", timeout=60)
    # SIGTERM was honoured: the pod went well before its 20 s grace period ran out.
    assert time.monotonic() - t0 < 15
    assert cluster.kubectl("get", "pod", "graceful", check=False).returncode == 1

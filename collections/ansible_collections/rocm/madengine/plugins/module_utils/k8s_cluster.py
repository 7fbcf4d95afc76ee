"""The Kubernetes API as the target needs it, through the official `kubernetes` client: connect and validate,
create (or server-side dry-run) objects, read Jobs and pods, watch pods, read logs, delete. API failures become
one-line MadengineErrors."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .errors import ConfigError, MadengineError

GROUP_OF_KIND = {"Job": "batch", "ConfigMap": "", "Secret": "", "Service": "", "PersistentVolumeClaim": ""}


class K8sError(MadengineError):
    """The cluster refused or failed a request (exit 1)."""


def api_message(exc: BaseException) -> str:
    """The one line a Kubernetes API failure deserves: the server's message, else the HTTP reason."""
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError):
            message = None
        if message:
            return str(message).splitlines()[0]
    status, reason = getattr(exc, "status", None), getattr(exc, "reason", None)
    if status:
        return f"HTTP {status} {reason or ''}".strip()
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _status(exc: BaseException) -> int:
    return int(getattr(exc, "status", 0) or 0)


class Cluster:
    """One cluster and namespace. `client` is the kubernetes package (injected for unit tests)."""

    def __init__(self, kubeconfig: str, context: str, namespace: str, client: Any = None) -> None:
        if client is None:
            import kubernetes as client  # heavy: imported only for the Kubernetes target
        self.k8s = client
        self.namespace = namespace
        self.where = self._connect(kubeconfig, context)
        self.core = client.client.CoreV1Api(self.api)
        self.batch = client.client.BatchV1Api(self.api)

    def _connect(self, kubeconfig: str, context: str) -> str:
        config = self.k8s.config
        path = os.path.expanduser(kubeconfig or "~/.kube/config")
        try:
            if kubeconfig or os.path.isfile(path):
                if not os.path.isfile(path):
                    raise ConfigError(
                        f"k8s.kubeconfig {kubeconfig}: file not found", hint="point it at the cluster's kubeconfig"
                    )
                self.api = config.new_client_from_config(config_file=path, context=context or None)
                return f"{self.api.configuration.host} (kubeconfig {path})"
            loaded = self.k8s.client.Configuration()
            config.load_incluster_config(client_configuration=loaded)
            self.api = self.k8s.client.ApiClient(loaded)
            return f"{loaded.host} (in-cluster)"
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"k8s: cannot load the cluster configuration ({path}): {api_message(exc)}",
                hint="set k8s.kubeconfig (and k8s.context) to a working kubeconfig",
            ) from None

    # ------------------------------------------------------------------ validation

    def check_reachable(self) -> str:
        try:
            info = self.k8s.client.VersionApi(self.api).get_code(_request_timeout=15)
        except Exception as exc:
            raise ConfigError(
                f"k8s: the cluster at {self.where} is unreachable: {api_message(exc)}",
                hint="check k8s.kubeconfig, the network and the API server",
            ) from None
        return str(info.git_version)

    def check_namespace(self) -> None:
        try:
            self.core.read_namespace(self.namespace, _request_timeout=15)
        except Exception as exc:
            if _status(exc) == 404:
                raise ConfigError(
                    f"k8s.namespace '{self.namespace}' does not exist on {self.where}",
                    hint=f"create it (kubectl create namespace {self.namespace}) or pick another",
                ) from None
            if _status(exc) != 403:  # may not read namespaces but may use this one: the submission will tell
                raise K8sError(f"k8s: cannot read namespace '{self.namespace}': {api_message(exc)}") from None

    def nodes_with(self, resource: str) -> List[str]:
        """Nodes whose allocatable resources include `resource` (count > 0)."""
        nodes = self._call("list nodes", self.core.list_node, _request_timeout=30)
        found = []
        for node in nodes.items:
            value = (node.status.allocatable or {}).get(resource, "0")
            if str(value) not in ("", "0"):
                found.append(node.metadata.name)
        return found

    # ------------------------------------------------------------------ objects

    def _call(self, what: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            raise K8sError(f"k8s: {what} failed: {api_message(exc)}", status=_status(exc)) from None

    def create(self, obj: Mapping[str, Any], dry_run: bool = False) -> Dict[str, Any]:
        """Create one object in the namespace; dry_run asks the server to validate it and store nothing."""
        kind = obj["kind"]
        method = {
            "Job": self.batch.create_namespaced_job,
            "ConfigMap": self.core.create_namespaced_config_map,
            "Secret": self.core.create_namespaced_secret,
            "Service": self.core.create_namespaced_service,
        }[kind]
        extra = {"dry_run": "All"} if dry_run else {}
        created = self._call(
            f"create {kind} {obj['metadata']['name']}", method, self.namespace, obj, _request_timeout=60, **extra
        )
        return dict(self.api.sanitize_for_serialization(created))

    def set_owner(self, obj: Mapping[str, Any], job: Mapping[str, Any]) -> None:
        """Make `obj` belong to the Job, so deleting the Job (by hand, by TTL or by us) removes it too."""
        owner = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job["metadata"]["name"],
            "uid": job["metadata"]["uid"],
            "blockOwnerDeletion": False,
        }
        patch = {"metadata": {"ownerReferences": [owner]}}
        name = obj["metadata"]["name"]
        method = {
            "ConfigMap": self.core.patch_namespaced_config_map,
            "Secret": self.core.patch_namespaced_secret,
            "Service": self.core.patch_namespaced_service,
        }[obj["kind"]]
        self._call(f"set the owner of {obj['kind']} {name}", method, name, self.namespace, patch)

    def jobs(self, selector: str) -> Dict[str, Any]:
        found = self._call("list jobs", self.batch.list_namespaced_job, self.namespace, label_selector=selector)
        return {job.metadata.name: job for job in found.items}

    def job(self, name: str) -> Optional[Any]:
        try:
            return self.batch.read_namespaced_job(name, self.namespace, _request_timeout=30)
        except Exception as exc:
            if _status(exc) == 404:
                return None
            raise K8sError(f"k8s: read job {name} failed: {api_message(exc)}") from None

    def annotate_job(self, name: str, annotations: Mapping[str, str]) -> None:
        patch = {"metadata": {"annotations": dict(annotations)}}
        self._call(f"annotate job {name}", self.batch.patch_namespaced_job, name, self.namespace, patch)

    def pods(self, selector: str) -> Tuple[List[Any], str]:
        found = self._call("list pods", self.core.list_namespaced_pod, self.namespace, label_selector=selector)
        return list(found.items), str(found.metadata.resource_version or "")

    def watch_pods(self, selector: str, resource_version: str, seconds: int) -> Iterator[Tuple[str, Any]]:
        """(event type, pod) as they happen, for at most `seconds`; ends early when the server ends the watch."""
        watcher = self.k8s.watch.Watch()
        try:
            for event in watcher.stream(
                self.core.list_namespaced_pod,
                self.namespace,
                label_selector=selector,
                resource_version=resource_version or None,
                timeout_seconds=max(1, int(seconds)),
                _request_timeout=int(seconds) + 15,
            ):
                yield str(event["type"]), event["object"]
        except Exception as exc:
            if _status(exc) == 410:  # resource version too old: the caller lists again
                return
            raise K8sError(f"k8s: watching pods failed: {api_message(exc)}") from None
        finally:
            watcher.stop()

    def log(self, pod: str, container: str) -> str:
        try:
            text = self.core.read_namespaced_pod_log(pod, self.namespace, container=container, _request_timeout=120)
        except Exception as exc:
            if _status(exc) in (400, 404):  # never started, or already gone
                return ""
            raise K8sError(f"k8s: reading the log of pod {pod} failed: {api_message(exc)}") from None
        return str(text or "")

    def delete_job(self, name: str) -> bool:
        """Delete a Job and (in the background) its pods and the objects it owns; False when it was gone."""
        try:
            self.batch.delete_namespaced_job(name, self.namespace, propagation_policy="Background", _request_timeout=60)
        except Exception as exc:
            if _status(exc) == 404:
                return False
            raise K8sError(f"k8s: delete job {name} failed: {api_message(exc)}") from None
        return True

    def delete(self, kind: str, name: str) -> None:
        method = {
            "ConfigMap": self.core.delete_namespaced_config_map,
            "Secret": self.core.delete_namespaced_secret,
            "Service": self.core.delete_namespaced_service,
        }[kind]
        try:
            method(name, self.namespace, _request_timeout=60)
        except Exception as exc:
            if _status(exc) != 404:
                raise K8sError(f"k8s: delete {kind} {name} failed: {api_message(exc)}") from None

{{/*
The operator's permissions, one rule per need; the same rules go into a ClusterRole
(whole cluster) or into a Role in each watched namespace. Derived from the code and
checked by running the operator with exactly these rights (tests/chart/test_rbac.py).
Nothing else: no Secrets (Prometheus credentials reach the pod as environment
variables through the kubelet), no Pods, no Deployments, no CRDs, no Namespaces (Kopf's
scanning is off: namespaces come from the command line, resources from discovery).
*/}}
{{- define "modeldeploy.rules" -}}
# Kopf lists and watches ModelDeployments (the operator reads them from that watch) and
# patches them for its finalizer; the operator removes the one-shot
# modeldeploy.io/command annotation (JSON patch).
- apiGroups: ["modeldeploy.io"]
  resources: ["modeldeployments"]
  verbs: ["list", "watch", "patch"]
# The rollout's whole state (phase, step, counters, verdicts) is written to status.
- apiGroups: ["modeldeploy.io"]
  resources: ["modeldeployments/status"]
  verbs: ["patch"]
# The SeldonDeployment's ownerReference sets blockOwnerDeletion; where the
# OwnerReferencesPermissionEnforcement admission plugin is on (OpenShift, hardened
# clusters), that requires update on the owner's finalizers subresource.
- apiGroups: ["modeldeploy.io"]
  resources: ["modeldeployments/finalizers"]
  verbs: ["update"]
# One SeldonDeployment per ModelDeployment: watched (a local cache, no read per
# reconcile), created, replaced when the routing changes. No delete (garbage collection
# follows the ownerReference).
- apiGroups: ["machinelearning.seldon.io"]
  resources: ["seldondeployments"]
  verbs: ["list", "watch", "create", "update"]
# Events on ModelDeployments: every transition and verdict, and Kopf's own warnings; a
# repeat of an event counts up on the existing one (get after a restart, patch).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "get", "patch"]
{{- if .Values.peering.enabled }}
# Peering: Kopf watches the peering object and patches its status with its heartbeat;
# an operator of higher priority there pauses this one.
- apiGroups: ["kopf.dev"]
  resources: [{{ if include "modeldeploy.clusterwide" . }}"clusterkopfpeerings"{{ else }}"kopfpeerings"{{ end }}]
  verbs: ["list", "watch", "patch"]
{{- end }}
{{- end -}}

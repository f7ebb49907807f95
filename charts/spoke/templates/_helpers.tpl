{{/* Names and labels, the usual Helm shape. */}}
{{- define "spoke.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "spoke.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "spoke.selectorLabels" -}}
app.kubernetes.io/name: {{ include "spoke.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "spoke.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "spoke.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: spoke
app.kubernetes.io/part-of: fleetscale
{{- end }}

{{- define "spoke.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "spoke.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "spoke.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The values keys that are SpokeSettings fields, rendered as SPOKE_<KEY_UPPER>. Adding a setting to
the chart means adding its key here, to values.yaml and to values.schema.json; the chart tests check
each name against SpokeSettings. The nats_* settings are rendered apart (they come from .Values.nats
and a Secret).
*/}}
{{- define "spoke.settingKeys" -}}
{{- list
  "cluster_id" "backend" "report_interval_s" "hub_away_after_s" "autonomy_hold_s" "health_host" "health_port"
  "actuator" "keda_scaler_host" "keda_scaler_port"
  "log_level" "log_format" "shutdown_timeout_s"
  "kube_managed_label" "kube_namespaces" "kube_create_variants" "kube_apply_resources" "kube_measure_starts"
  "dcgm_endpoints" "dcgm_discover" "dcgm_pod_selector" "dcgm_pod_namespace" "dcgm_pod_port"
  "dcgm_pod_path" "nvml_enabled" "metrics_api_enabled" "engine_metrics_port" "engine_metrics_path"
  "prometheus_url" "prometheus_token_file" "prometheus_ca_file"
  "prometheus_insecure_skip_verify" "prometheus_queries" "source_timeout_s"
  | toJson }}
{{- end }}

{{/*
One env entry per set key: null and empty lists/maps are left out, so the process default applies
(and a setting the process does not know yet is never sent). Lists and maps go as JSON, which
pydantic-settings parses for complex fields; scalars as strings.
*/}}
{{- define "spoke.settingsEnv" -}}
{{- $values := .values }}
{{- range $key := .keys }}
{{- /* Helm drops null keys while merging values, so a missing key and a null are the same. */}}
{{- $v := ternary (index $values $key) nil (hasKey $values $key) }}
{{- if kindIs "invalid" $v }}
{{- else if or (kindIs "slice" $v) (kindIs "map" $v) }}
{{- if $v }}
- name: {{ printf "%s%s" $.prefix (upper $key) }}
  value: {{ toJson $v | quote }}
{{- end }}
{{- else if kindIs "float64" $v }}
{{- /* Helm reads every number as float64, and toString writes a large one as 5.36870912e+08,
       which an int setting refuses; JSON writes it as 536870912 (and 0.5 as 0.5). */}}
- name: {{ printf "%s%s" $.prefix (upper $key) }}
  value: {{ toJson $v | quote }}
{{- else }}
- name: {{ printf "%s%s" $.prefix (upper $key) }}
  value: {{ toString $v | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The leaf node's objects (nats.leaf.enabled): their name, and labels apart from the spoke's, so
the spoke's Service never selects the leaf's pod. */}}
{{- define "spoke.leafName" -}}
{{- printf "%s-leaf" (include "spoke.fullname" . | trunc 58 | trimSuffix "-") }}
{{- end }}

{{- define "spoke.leafSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-leaf" (include "spoke.name" . | trunc 58 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "spoke.leafLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "spoke.leafSelectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: nats-leaf
app.kubernetes.io/part-of: fleetscale
{{- end }}

{{/* The leaf's nats-server config: the same text as shared/natstopology.py's leaf_config (the chart
tests compare them). */}}
{{- define "spoke.leafConfig" -}}
{{- $leaf := .Values.nats.leaf -}}
# Fleetscale: cluster {{ .Values.cluster_id }}'s leaf node (shared/natstopology.py; the spoke chart writes the same).
# No JetStream here: every stream lives on the hub side (docs/operations.md, NATS topology).
server_name: {{ printf "leaf-%s" .Values.cluster_id | quote }}
listen: "0.0.0.0:4222"
leafnodes {
  reconnect: "1s"
  remotes: [ { urls: {{ toJson $leaf.remotes }}{{ if $leaf.credentialsSecret }}, credentials: {{ printf "/etc/nats-leaf/%s" $leaf.credentialsKey | quote }}{{ end }} } ]
}
http: "0.0.0.0:8222"
{{ end }}

{{/* Where the spoke connects: its leaf node when there is one, else nats.url. */}}
{{- define "spoke.natsUrl" -}}
{{- if .Values.nats.leaf.enabled }}
{{- printf "nats://%s.%s.svc:4222" (include "spoke.leafName" .) .Release.Namespace }}
{{- else }}
{{- .Values.nats.url }}
{{- end }}
{{- end }}

{{/* The NATS connection: URL as a value, credentials only through the Secret. */}}
{{- define "spoke.natsEnv" -}}
{{- $nats := .nats }}
- name: {{ .prefix }}NATS_URL
  value: {{ .url | quote }}
{{- $domain := $nats.jsDomain | default (ternary "hub" "" $nats.leaf.enabled) }}
{{- if $domain }}
- name: {{ .prefix }}NATS_JS_DOMAIN
  value: {{ $domain | quote }}
{{- end }}
{{- if eq $nats.auth "token" }}
- name: {{ .prefix }}NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $nats.existingSecret }}
      key: {{ $nats.tokenKey }}
{{- else if eq $nats.auth "creds" }}
- name: {{ .prefix }}NATS_CREDS_FILE
  value: {{ printf "/etc/fleetscale/nats/%s" $nats.credsKey | quote }}
{{- else if eq $nats.auth "nkey" }}
- name: {{ .prefix }}NATS_NKEY_FILE
  value: {{ printf "/etc/fleetscale/nats/%s" $nats.nkeyKey | quote }}
{{- end }}
{{- end }}

{{/* The spoke's rules on namespaced resources; see docs/charts.md for why each one is needed. */}}
{{- define "spoke.namespacedRules" -}}
# Read the workloads it scales (and ReplicaSets, to map pods to their Deployment).
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "replicasets"]
  verbs: ["get", "list", "watch"]
# Scale only through the scale subresource: the spoke can change replicas and nothing else.
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale", "replicasets/scale"]
  verbs: ["get", "patch", "update"]
{{- if .Values.kube_create_variants }}
# Create GPU-type variants of a workload (kube_create_variants), of either kind it scales.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["create"]
{{- end }}
{{- if .Values.kube_apply_resources }}
# Patch containers' requests and limits into pod templates (kube_apply_resources, docs/vertical.md),
# unless a VerticalPodAutoscaler acts on the object (conflict check).
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets", "replicasets"]
  verbs: ["patch"]
- apiGroups: ["autoscaling.k8s.io"]
  resources: ["verticalpodautoscalers"]
  verbs: ["get", "list"]
{{- end }}
# Pods: find a workload's replicas and their GPUs. "patch" is only used to set the
# controller.kubernetes.io/pod-deletion-cost annotation before a scale-down, so the ReplicaSet
# removes the replicas the hub chose; RBAC cannot narrow patch to one annotation.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "patch"]
# Record scale actions as Events on the workloads (both Event APIs; clients use either), and read
# the kubelet's image events on new pods to tell cold from cached starts (kube_measure_starts).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch", "list"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Detect another autoscaler (HPA, KEDA) owning the same workload and stand back.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list"]
- apiGroups: ["keda.sh"]
  resources: ["scaledobjects"]
  verbs: ["get", "list"]
# Containers' CPU and memory use from the metrics API (metrics-server), for vertical
# recommendations (docs/vertical.md); harmless where no metrics API is installed.
- apiGroups: ["metrics.k8s.io"]
  resources: ["pods"]
  verbs: ["get", "list"]
{{- end }}

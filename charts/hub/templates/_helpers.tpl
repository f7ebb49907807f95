{{/* Names and labels, the usual Helm shape. */}}
{{- define "hub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hub.fullname" -}}
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

{{- define "hub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hub.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "hub.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hub.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: hub
app.kubernetes.io/part-of: fleetscale
{{- end }}

{{- define "hub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "hub.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "hub.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The values keys that are HubSettings fields, rendered as HUB_<KEY_UPPER>. Adding a setting to the
chart means adding its key here, to values.yaml and to values.schema.json; the chart tests check
each name against HubSettings. nats_* come from .Values.nats and a Secret; auth_tokens_dir and
tls_* from .Values.auth and .Values.tls (mounted Secrets, see hub.apiEnv).
*/}}
{{- define "hub.settingKeys" -}}
{{- list
  "api_host" "api_port" "tick_s" "unready_after_failed_ticks" "stale_after_intervals" "startup_grace_s" "change_tolerance" "sweep_s" "evaluation_batch" "command_deadline_s" "resize_settle_s"
  "policy_file" "policy_dir" "policy_poll_s" "policy_resync_s" "budget_file" "budget_dir"
  "crd_watch" "crd_namespace" "kubeconfig" "kube_context"
  "gpu_prices" "decision_log_size" "history_interval_s"
  "decisions_max_age_s" "decisions_max_msgs" "decisions_max_bytes"
  "clusters" "max_clusters" "max_workloads" "cluster_retention_s" "max_clock_skew_s"
  "intake_queue_size" "intake_queue_bytes" "issued_commands_kept" "drift_backoff_base_s" "drift_backoff_cap_s"
  "sharded" "id" "partitions" "lease_renew_s" "lease_ttl_s"
  "auth_open_paths" "auth_open_page" "auth_reload_interval_s"
  "log_level" "log_format" "shutdown_timeout_s"
  | toJson }}
{{- end }}

{{/*
One env entry per set key: null and empty lists/maps are left out, so the process default applies
(and a setting the process does not know yet is never sent). Lists and maps go as JSON, which
pydantic-settings parses for complex fields; scalars as strings.
*/}}
{{- define "hub.settingsEnv" -}}
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

{{/* The NATS connection: URL as a value, credentials only through the Secret. */}}
{{- define "hub.natsEnv" -}}
{{- $nats := .nats }}
- name: {{ .prefix }}NATS_URL
  value: {{ $nats.url | quote }}
{{- with $nats.streamReplicas }}
- name: {{ $.prefix }}NATS_STREAM_REPLICAS
  value: {{ toJson . | quote }}
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


{{/* Where the API's Secrets are mounted, and the settings that point the hub at them. */}}
{{- define "hub.authDir" -}}/etc/fleetscale/auth{{- end }}
{{- define "hub.tlsDir" -}}/etc/fleetscale/tls{{- end }}

{{- define "hub.apiEnv" -}}
{{- if .Values.auth.existingSecret }}
- name: HUB_AUTH_TOKENS_DIR
  value: {{ include "hub.authDir" . | quote }}
{{- end }}
{{- if .Values.tls.existingSecret }}
- name: HUB_TLS_CERT_FILE
  value: {{ printf "%s/tls.crt" (include "hub.tlsDir" .) | quote }}
- name: HUB_TLS_KEY_FILE
  value: {{ printf "%s/tls.key" (include "hub.tlsDir" .) | quote }}
{{- if .Values.tls.clientAuth }}
- name: HUB_TLS_CLIENT_CA_FILE
  value: {{ printf "%s/ca.crt" (include "hub.tlsDir" .) | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The API port's name: https when TLS is on, so meshes and monitors read the protocol right. */}}
{{- define "hub.portName" -}}
{{- ternary "https" "http" (not (empty .Values.tls.existingSecret)) }}
{{- end }}

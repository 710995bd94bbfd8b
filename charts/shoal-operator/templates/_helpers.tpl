{{/* Names and labels shared by every template. */}}
{{- define "shoal-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "shoal-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The selector labels as `key=value,...`: the operator learns its own pods from them. */}}
{{- define "shoal-operator.selectorString" -}}
{{- $pairs := list -}}
{{- range $k, $v := (include "shoal-operator.selectorLabels" . | fromYaml) -}}
{{- $pairs = append $pairs (printf "%s=%s" $k $v) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{- define "shoal-operator.labels" -}}
{{ include "shoal-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The `helm test` pod: its own name label, so nothing that selects the operator selects it,
     and the NetworkPolicy can admit it by these labels. */}}
{{- define "shoal-operator.testSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shoal-operator.serviceAccountName" -}}
{{- default (include "shoal-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "shoal-operator.watchNamespace" -}}
{{- default .Release.Namespace .Values.rbac.watchNamespace -}}
{{- end -}}

{{/* The rules the operator needs, and nothing else (no pods/exec; of Secrets, get only). */}}
{{- define "shoal-operator.rules" -}}
- apiGroups: ["shoal.dev"]
  resources: ["shoalclusters"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["shoal.dev"]
  resources: ["shoalclusters/status", "shoalclusters/scale"]
  verbs: ["get", "patch"]
- apiGroups: ["shoal.dev"]
  resources: ["shoalclusters/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
# A ShoalCluster's optional spec.networkPolicy; deleted when it is turned off.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/status"]
  verbs: ["patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Secrets a ShoalCluster names (spec.auth.secretRef, spec.users[].passwordSecretRef,
# spec.tls.secretName) and the two the operator keeps per cluster (<cluster>-operator: its own
# ACL password, made once; <cluster>-acl: the nodes' ACL file, hashes only): read, and the
# operator's own created and applied. With rbac.secretNames set, only the listed names (list
# the operator's own too); Kubernetes cannot limit `create` by name.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "patch"]
  {{- with .Values.rbac.secretNames }}
  resourceNames: {{ toJson . }}
  {{- end }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create"]
{{- if .Values.rbac.serviceMonitors }}
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "create", "patch"]
{{- end }}
{{- end -}}

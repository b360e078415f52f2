{{/* Chart name, overridable. */}}
{{- define "kcloud-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the prefix of every object name. */}}
{{- define "kcloud-operator.fullname" -}}
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

{{- define "kcloud-operator.schedulerName" -}}
{{- printf "%s-scheduler" (include "kcloud-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "kcloud-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "kcloud-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kcloud
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels; component is "operator" or "scheduler". */}}
{{- define "kcloud-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kcloud-operator.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kcloud-operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "kcloud-operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kcloud-operator.schedulerServiceAccountName" -}}
{{- if .Values.scheduler.serviceAccount.create }}
{{- default (include "kcloud-operator.schedulerName" .) .Values.scheduler.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.scheduler.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kcloud-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "kcloud-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kcloud-operator.webhookSecretName" -}}
{{- printf "%s-webhook-certs" (include "kcloud-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kcloud-operator.certificateName" -}}
{{- printf "%s-webhook" (include "kcloud-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kcloud-operator.image" -}}
{{- printf "%s:%s" .repository (default .root.Chart.AppVersion .root.Values.image.tag) }}
{{- end }}

{{/* The webhook certificate directory the operator reads (its flag's default). */}}
{{- define "kcloud-operator.certDir" -}}
/tmp/k8s-webhook-server/serving-certs
{{- end }}

{{/* The catalog ConfigMap, namespace/name, that the operator and the scheduler both watch. */}}
{{- define "kcloud-operator.catalogConfigMap" -}}
{{- default (printf "%s/kcloud-catalog" .Release.Namespace) .Values.catalog.configMap }}
{{- end }}

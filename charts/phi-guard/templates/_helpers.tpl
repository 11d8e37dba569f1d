{{/* Chart name. */}}
{{- define "phi-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the prefix of every resource name. */}}
{{- define "phi-guard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "phi-guard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable across upgrades. */}}
{{- define "phi-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "phi-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "phi-guard.labels" -}}
helm.sh/chart: {{ include "phi-guard.chart" . }}
{{ include "phi-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: phi-guard
{{- end -}}

{{- define "phi-guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "phi-guard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The ValidatingWebhookConfiguration's name (cluster-scoped, so release-unique). */}}
{{- define "phi-guard.webhookConfigName" -}}
{{- include "phi-guard.fullname" . -}}
{{- end -}}

{{/* The Secret holding the serving certificate, whatever the TLS mode. */}}
{{- define "phi-guard.tlsSecretName" -}}
{{- if eq .Values.tls.mode "secret" -}}
{{- required "tls.secret.name is required when tls.mode=secret" .Values.tls.secret.name -}}
{{- else if eq .Values.tls.mode "selfManaged" -}}
{{- default (printf "%s-tls" (include "phi-guard.fullname" .)) .Values.tls.selfManaged.secretName -}}
{{- else -}}
{{- printf "%s-tls" (include "phi-guard.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "phi-guard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Restricted Pod Security container settings, shared by every container the chart runs. */}}
{{- define "phi-guard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "phi-guard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Namespaces the webhook never sees: kube-system, the release namespace, then the extras. */}}
{{- define "phi-guard.excludedNamespaces" -}}
{{- $ns := list "kube-system" .Release.Namespace -}}
{{- range .Values.webhook.excludedNamespaces -}}
{{- $ns = append $ns . -}}
{{- end -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{/*
CEL for the phi-objects webhook: the object or old object carries the PHI label on itself, its pod
template or a CronJob's pod template. The same expression src/policy/webhooks.rs generates for the
baseline (tests/chart.rs compares them); phi-guard rewrites it when PhiPolicies scope otherwise.
*/}}
{{- define "phi-guard.celLabeled" -}}
{{- $k := printf "'%s'" (.Values.policy.baseline.phiLabel.key | replace "\\" "\\\\" | replace "'" "\\'") -}}
{{- $v := printf "'%s'" (.Values.policy.baseline.phiLabel.value | replace "\\" "\\\\" | replace "'" "\\'") -}}
{{- $terms := list -}}
{{- range $root := list "object" "oldObject" -}}
{{- range $path := list (list "metadata") (list "spec" "template" "metadata") (list "spec" "jobTemplate" "spec" "template" "metadata") -}}
{{- $at := $root -}}
{{- $guards := list -}}
{{- range $p := append $path "labels" -}}
{{- $at = printf "%s.%s" $at $p -}}
{{- $guards = append $guards (printf "has(%s)" $at) -}}
{{- end -}}
{{- $present := join " && " $guards -}}
{{- $terms = append $terms (printf "(%s != null && (%s && %s in %s && %s[%s] == %s))" $root $present $k $at $at $k $v) -}}
{{- end -}}
{{- end -}}
{{- join " || " $terms -}}
{{- end -}}

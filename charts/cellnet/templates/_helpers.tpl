{{- define "cellnet.name" -}}cellnet{{- end -}}

{{- define "cellnet.fullname" -}}cellnet-controller{{- end -}}

{{- define "cellnet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default "cellnet-controller" .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "cellnet.labels" -}}
app.kubernetes.io/name: cellnet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "cellnet.selectorLabels" -}}
app.kubernetes.io/name: cellnet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "cellnet.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- /* Cluster-scoped names carry the release name: two releases never share a ClusterRole. */ -}}
{{- define "cellnet.clusterRoleName" -}}{{ .Release.Name }}-controller{{- end -}}

{{- /* The namespaces whose Secrets the controller reads, comma-separated; empty: cluster-wide. */ -}}
{{- define "cellnet.secretNamespaces" -}}
{{- if .Values.rbac.clusterWideSecrets -}}
{{- if .Values.rbac.secretNamespaces -}}
{{- fail "rbac.clusterWideSecrets=true reads Secrets in every namespace: leave rbac.secretNamespaces empty" -}}
{{- end -}}
{{- else -}}
{{- join "," (default (list .Release.Namespace) .Values.rbac.secretNamespaces) -}}
{{- end -}}
{{- end -}}

{{- /* Where the controller serves /metrics: inside the pod only with authProxy or bindAddress. */ -}}
{{- define "cellnet.metricsBind" -}}
{{- if or .Values.metrics.authProxy.enabled (eq .Values.metrics.bindAddress "127.0.0.1") -}}
127.0.0.1:{{ .Values.metrics.port }}
{{- else -}}
:{{ .Values.metrics.port }}
{{- end -}}
{{- end -}}

{{- /* Whether a Service (and ServiceMonitor) can reach /metrics. */ -}}
{{- define "cellnet.metricsExposed" -}}
{{- if or .Values.metrics.authProxy.enabled (ne .Values.metrics.bindAddress "127.0.0.1") -}}true{{- end -}}
{{- end -}}

{{- /* The port scrapers connect to: the proxy's, else the controller's. */ -}}
{{- define "cellnet.metricsServicePort" -}}
{{- if .Values.metrics.authProxy.enabled -}}{{ .Values.metrics.authProxy.port }}{{- else -}}{{ .Values.metrics.port }}{{- end -}}
{{- end -}}

{{- /*
An egress rule for each entry of endpointAllow written as an address or CIDR:
198.51.100.0/24:50051, 198.51.100.7, [2001:db8::/32]:8181, 2001:db8::1. Host names are left
to networkPolicy.extraEgress (a NetworkPolicy matches addresses only).
*/ -}}
{{- define "cellnet.allowEgress" -}}
{{- range .Values.endpointAllow }}
{{- $host := . }}
{{- $port := "" }}
{{- if hasPrefix "[" . }}
{{- $host = trimPrefix "[" (regexReplaceAll "\\].*$" . "") }}
{{- $port = regexReplaceAll "^\\[[^\\]]*\\]:?" . "" }}
{{- else if eq (len (splitList ":" .)) 2 }}
{{- $host = first (splitList ":" .) }}
{{- $port = last (splitList ":" .) }}
{{- end }}
{{- $ip := or (regexMatch "^[0-9.]+(/[0-9]+)?$" $host) (contains ":" $host) }}
{{- if $ip }}
{{- $cidr := $host }}
{{- if not (contains "/" $host) }}
{{- $cidr = printf "%s/%s" $host (ternary "128" "32" (contains ":" $host)) }}
{{- end }}
- to:
    - ipBlock:
        cidr: {{ $cidr | quote }}
  {{- if $port }}
  ports:
    - port: {{ int $port }}
      protocol: TCP
  {{- end }}
{{- else }}
# {{ . }}: a host name; its addresses belong in networkPolicy.extraEgress
{{- end }}
{{- end }}
{{- end -}}

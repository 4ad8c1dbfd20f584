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

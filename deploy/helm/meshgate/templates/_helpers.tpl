{{- define "meshgate.name" -}}meshgate{{- end -}}

{{- define "meshgate.labels" -}}
app.kubernetes.io/name: meshgate
app.kubernetes.io/part-of: meshgate
{{- end -}}

{{- define "meshgate.selector" -}}
app.kubernetes.io/name: meshgate
app.kubernetes.io/part-of: meshgate
{{- end -}}

{{- define "meshgate.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}

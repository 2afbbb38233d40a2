{{- /*
The operator's notification settings (values `notifications`) as environment variables,
read by operator/modeldeploy/notify.py. Webhook URLs never enter the JSON list: each is
its own variable, from the webhook's Secret or its url value, named in the list's urlEnv.
*/ -}}
{{- define "modeldeploy.notifyEnv" -}}
{{- $n := .Values.notifications | default dict }}
{{- if $n.webhooks }}
{{- $hooks := list }}
{{- range $i, $h := $n.webhooks }}
{{- $default := true }}
{{- if hasKey $h "default" }}{{ $default = $h.default }}{{ end }}
{{- $hooks = append $hooks (dict "name" $h.name "format" ($h.format | default "cloudevents") "events" ($h.events | default list) "default" $default "urlEnv" (printf "MODELDEPLOY_NOTIFY_URL_%d" $i)) }}
{{- end }}
- name: MODELDEPLOY_NOTIFY_WEBHOOKS
  value: {{ toJson $hooks | quote }}
{{- range $i, $h := $n.webhooks }}
- name: MODELDEPLOY_NOTIFY_URL_{{ $i }}
  {{- if $h.existingSecret }}
  valueFrom:
    secretKeyRef: {name: {{ $h.existingSecret }}, key: {{ $h.secretKey | default "url" | quote }}}
  {{- else }}
  value: {{ $h.url | quote }}
  {{- end }}
{{- end }}
{{- with $n.cluster }}
- name: MODELDEPLOY_NOTIFY_CLUSTER
  value: {{ . | quote }}
{{- end }}
- name: MODELDEPLOY_NOTIFY_TIMEOUT
  value: {{ $n.timeout | quote }}
- name: MODELDEPLOY_NOTIFY_RETRIES
  value: {{ $n.retries | quote }}
- name: MODELDEPLOY_NOTIFY_BACKOFF
  value: {{ $n.backoff | quote }}
- name: MODELDEPLOY_NOTIFY_QUEUE_SIZE
  value: {{ $n.queueSize | quote }}
{{- end }}
{{- end }}

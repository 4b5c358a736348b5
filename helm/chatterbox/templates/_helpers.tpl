{{/* Names, labels and the pieces every part's pod shares. */}}

{{- define "chatterbox.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "chatterbox.fullname" -}}
{{- $name := printf "%s-%s" .Release.Name .Chart.Name -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- $name = .Release.Name -}}
{{- end -}}
{{- /* Service names must start with a letter, release names need not ("2024-chat"). */ -}}
{{- if regexMatch "^[0-9]" $name -}}
{{- $name = printf "%s-%s" .Chart.Name .Release.Name -}}
{{- end -}}
{{- $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of one part's objects: <fullname>-<part>, the fullname cut so
the whole stays a DNS label (63 characters) and keeps its part: cutting the
joined name instead would give every part of a long release the same name. */}}
{{- define "chatterbox.part" -}}
{{- $room := sub 62 (len .part) | int -}}
{{- printf "%s-%s" (include "chatterbox.fullname" .root | trunc $room | trimSuffix "-") .part -}}
{{- end -}}

{{- define "chatterbox.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chatterbox.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .part }}
{{- end -}}

{{- define "chatterbox.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "chatterbox.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "chatterbox.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{- define "chatterbox.backendsSecret" -}}
{{- printf "%s-backends" (include "chatterbox.fullname" .) -}}
{{- end -}}

{{- define "chatterbox.s3Secret" -}}
{{- printf "%s-s3" (include "chatterbox.fullname" .) -}}
{{- end -}}

{{- define "chatterbox.keysSecret" -}}
{{- .Values.signingKey.existingSecret | default (printf "%s-signing-key" (include "chatterbox.fullname" .)) -}}
{{- end -}}

{{- define "chatterbox.grpcTlsSecret" -}}
{{- .Values.grpcTls.existingSecret | default (printf "%s-grpc-tls" (include "chatterbox.fullname" .)) -}}
{{- end -}}

{{/* The gRPC URL of a service part, as the others reach it. */}}
{{- define "chatterbox.url" -}}
{{- $svc := index .root.Values.services .part -}}
{{- printf "%s://%s:%v" (ternary "https" "http" .root.Values.grpcTls.enabled) (include "chatterbox.part" .) $svc.port -}}
{{- end -}}

{{/* MONGODB_URI / REDIS_URL from the backends Secret (the chart's or an existing one). */}}
{{- define "chatterbox.mongodbEnv" -}}
- name: MONGODB_URI
  valueFrom:
    secretKeyRef:
      name: {{ .Values.mongodb.existingSecret | default (include "chatterbox.backendsSecret" .) }}
      key: {{ ternary .Values.mongodb.existingSecretKey "mongodb-uri" (ne .Values.mongodb.existingSecret "") }}
{{- end -}}

{{- define "chatterbox.redisEnv" -}}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret | default (include "chatterbox.backendsSecret" .) }}
      key: {{ ternary .Values.redis.existingSecretKey "redis-url" (ne .Values.redis.existingSecret "") }}
{{- end -}}

{{/* Where browsers fetch signed media URLs (AWS path-style when no endpoint
is named): the gateway's web client may show images from there. No credentials. */}}
{{- define "chatterbox.mediaOriginEnv" -}}
{{- $s3 := .Values.s3 -}}
- name: CHATTERBOX_S3_PUBLIC_ENDPOINT
  value: {{ $s3.publicEndpoint | default $s3.endpoint | default (printf "https://s3.%s.amazonaws.com" $s3.region) | quote }}
{{- end -}}

{{/* The media service's S3 settings; credentials from a Secret, if any. */}}
{{- define "chatterbox.s3Env" -}}
{{- $s3 := .Values.s3 -}}
- name: S3_BUCKET
  value: {{ required "s3.bucket is required" $s3.bucket | quote }}
- name: AWS_REGION
  value: {{ $s3.region | quote }}
{{- with $s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with $s3.publicEndpoint }}
- name: CHATTERBOX_S3_PUBLIC_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if or $s3.existingSecret $s3.accessKeyId }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret | default (include "chatterbox.s3Secret" .) }}
      key: {{ ternary $s3.existingSecretAccessKeyIdKey "access-key-id" (ne $s3.existingSecret "") }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.existingSecret | default (include "chatterbox.s3Secret" .) }}
      key: {{ ternary $s3.existingSecretSecretAccessKeyKey "secret-access-key" (ne $s3.existingSecret "") }}
{{- end }}
{{- end -}}

{{/*
A part's pod spec. Arguments: root (the chart context), part, command
(what follows `chatterbox`), env (extra env entries, YAML), keyFile
(jwt-private.pem for auth, jwt-public.pem otherwise), ports, probes (YAML).
*/}}
{{- define "chatterbox.podTemplate" -}}
{{- $root := .root -}}
metadata:
  labels:
    {{- include "chatterbox.selectorLabels" . | nindent 4 }}
  annotations:
    checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
    {{- if $root.Values.grpcTls.enabled }}
    {{- /* New certificates in the values roll the pods (they read them at start); an existing Secret's rotation needs a rollout restart. */}}
    checksum/grpc-tls: {{ toJson $root.Values.grpcTls | sha256sum }}
    {{- end }}
    {{- with .metricsPort }}
    {{- if $root.Values.metrics.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ . | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- end }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  automountServiceAccountToken: false
  # The parts find each other by the URLs in the ConfigMap; the variables
  # Kubernetes would inject per Service (CHATTERBOX_AUTH_PORT=tcp://...) only
  # crowd the environment.
  enableServiceLinks: false
  securityContext:
    {{- toYaml $root.Values.podSecurityContext | nindent 4 }}
  {{- with .terminationGracePeriodSeconds }}
  terminationGracePeriodSeconds: {{ . }}
  {{- end }}
  containers:
    - name: {{ .part }}
      image: {{ include "chatterbox.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: {{ toJson .command }}
      securityContext:
        {{- toYaml $root.Values.securityContext | nindent 8 }}
      envFrom:
        - configMapRef:
            name: {{ include "chatterbox.fullname" $root }}
      env:
        - name: {{ ternary "CHATTERBOX_JWT_PRIVATE_KEY_FILE" "CHATTERBOX_JWT_PUBLIC_KEY_FILE" (eq .keyFile "jwt-private.pem") }}
          value: /etc/chatterbox/keys/{{ .keyFile }}
        {{- .env | nindent 8 }}
      ports:
        {{- .ports | nindent 8 }}
      {{- .probes | nindent 6 }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      volumeMounts:
        - name: keys
          mountPath: /etc/chatterbox/keys
          readOnly: true
        - name: data
          mountPath: /var/lib/chatterbox
        - name: tmp
          mountPath: /tmp
        {{- if $root.Values.grpcTls.enabled }}
        - name: grpc-tls
          mountPath: /etc/chatterbox/grpc-tls
          readOnly: true
        {{- end }}
  volumes:
    - name: keys
      secret:
        secretName: {{ include "chatterbox.keysSecret" $root }}
        # Only the key this part needs: the private key reaches auth alone.
        items:
          - key: {{ .keyFile }}
            path: {{ .keyFile }}
    {{- if $root.Values.grpcTls.enabled }}
    - name: grpc-tls
      secret:
        secretName: {{ include "chatterbox.grpcTlsSecret" $root }}
        # Readable by the pod's group (fsGroup) only.
        defaultMode: 0440
        items:
          - key: tls.crt
            path: tls.crt
          - key: tls.key
            path: tls.key
          - key: ca.crt
            path: ca.crt
    {{- end }}
    - name: data
      emptyDir: {}
    - name: tmp
      emptyDir: {}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{/* HPA and PDB of a part, when switched on. Arguments: root, part, spec (its values). */}}
{{- define "chatterbox.scaling" -}}
{{- if .spec.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "chatterbox.part" . }}
  labels:
    {{- include "chatterbox.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ include "chatterbox.part" . }}
  minReplicas: {{ .spec.autoscaling.minReplicas }}
  maxReplicas: {{ .spec.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .spec.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}
{{- if .spec.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "chatterbox.part" . }}
  labels:
    {{- include "chatterbox.labels" . | nindent 4 }}
spec:
  minAvailable: {{ .spec.podDisruptionBudget.minAvailable }}
  selector:
    matchLabels:
      {{- include "chatterbox.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}

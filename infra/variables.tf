# ---------------------------------------------------------------------------------------
# Generated inputs: `npx hourglass infra generate` writes both into
# event_types.auto.tfvars.json from schemas/. Never edit or override them by hand.
# ---------------------------------------------------------------------------------------

variable "prefix" {
  description = "Prefix of every resource name. Set by `hourglass infra generate --prefix`, because the Pub/Sub names in event_types were computed with it."
  type        = string

  validation {
    # Same rule as PREFIX_PATTERN in packages/common/src/naming.ts (a test compares them).
    condition     = can(regex("^[a-z][a-z0-9-]{0,29}$", var.prefix)) && !startswith(var.prefix, "goog")
    error_message = "prefix must match ^[a-z][a-z0-9-]{0,29}$ and not start with \"goog\"."
  }
}

variable "event_types" {
  description = "Every event type in schemas/, with its Pub/Sub names from resourceNames() and its newest schema. Generated."
  type = map(object({
    topic                    = string
    subscription             = string
    dead_letter_topic        = string
    dead_letter_subscription = string
    schema_version           = number
    schema_fingerprint       = string
    avro_schema              = string
    reference_avro           = string
  }))

  validation {
    condition     = length(var.event_types) > 0
    error_message = "event_types is empty: run `npx hourglass infra generate`."
  }
}

# ---------------------------------------------------------------------------------------
# Where it runs
# ---------------------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that holds the pipeline."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run services, Artifact Registry and (by default) the bucket and dataset."
  type        = string
  default     = "europe-west1"
}

variable "bucket_name" {
  description = "Globally unique name of the bucket that receives hourly Avro buckets (created here)."
  type        = string
}

variable "bucket_location" {
  description = "Bucket location; null means var.region. A multi-region (EU, US) trades latency for availability."
  type        = string
  default     = null
}

variable "kms_key_name" {
  description = "Optional CMEK for the bucket (projects/P/locations/L/keyRings/R/cryptoKeys/K); null uses Google-managed keys."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels added to every labelled resource."
  type        = map(string)
  default     = {}
}

variable "deletion_protection" {
  description = "Refuse to destroy the bucket contents, Cloud Run services and BigQuery tables. Turn off only to tear down a test pipeline."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------
# Pub/Sub and consumer defaults; each mirrors packages/common/src/defaults.ts (a test checks)
# and can be overridden per type in type_overrides.
# ---------------------------------------------------------------------------------------

variable "ack_deadline_seconds" {
  description = "Consumer subscription ack deadline (Defaults.ackDeadline): time to stage a part file before redelivery. The consumer is told the same value."
  type        = number
  default     = 60

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "Pub/Sub ack deadlines are 10..600 seconds."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries before a message moves to the dead-letter topic (Defaults.maxDeliveryAttempts; Pub/Sub allows 5..100)."
  type        = number
  default     = 10
}

variable "retention_seconds" {
  description = "Consumer subscription backlog retention (Defaults.retention): a week of consumer outage loses nothing."
  type        = number
  default     = 604800
}

variable "grace_seconds" {
  description = "Grace after an hour's end before it may close (Defaults.grace)."
  type        = number
  default     = 300
}

variable "retry_minimum_backoff" {
  description = "Redelivery backoff after a nack, lower bound (same as the local provisioner)."
  type        = string
  default     = "1s"
}

variable "retry_maximum_backoff" {
  description = "Redelivery backoff after a nack, upper bound (same as the local provisioner)."
  type        = string
  default     = "60s"
}

variable "type_overrides" {
  description = <<-EOT
    Per event type settings; keys must be event types. Unset fields use the defaults above.
    one_event_per_message = true makes the gateway publish every event alone (no bundles)
    and attaches the newest schema to the topic as a native Pub/Sub Avro schema.
  EOT
  type = map(object({
    grace_seconds         = optional(number)
    retention_seconds     = optional(number)
    max_delivery_attempts = optional(number)
    one_event_per_message = optional(bool, false)
  }))
  default = {}

  validation {
    condition     = alltrue([for t in keys(var.type_overrides) : contains(keys(var.event_types), t)])
    error_message = "type_overrides names an event type that is not in schemas/ (see event_types.auto.tfvars.json)."
  }

  validation {
    # HCL's || evaluates both sides, so each null check is a conditional.
    condition = alltrue(flatten([for o in values(var.type_overrides) : [
      o.retention_seconds == null ? true : o.retention_seconds >= 600 && o.retention_seconds <= 604800,
      o.max_delivery_attempts == null ? true : o.max_delivery_attempts >= 5 && o.max_delivery_attempts <= 100,
    ]]))
    error_message = "Pub/Sub limits: retention 600..604800 s, delivery attempts 5..100."
  }
}

variable "dead_letter_topic_retention" {
  description = "How long dead-letter topics keep messages, even acked ones, so they can be replayed by seek (Pub/Sub maximum: 31 days)."
  type        = string
  default     = "2678400s"
}

variable "staging_max_age_days" {
  description = "Lifecycle rule: delete objects under _staging/ older than this. Must exceed the longest consumer outage you expect to recover from; the consumer deletes staged files itself after finalizing."
  type        = number
  default     = 14

  validation {
    # Staged files are durable copies of acked messages; they must outlive the subscription backlog.
    condition     = var.staging_max_age_days >= 8
    error_message = "staging_max_age_days must be at least 8 (longer than the 7-day subscription retention)."
  }
}

# ---------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------

variable "gateway_image" {
  description = "Gateway image (deploy/gateway.Dockerfile), ideally by digest. null skips the Cloud Run services until images are pushed."
  type        = string
  default     = null
}

variable "consumer_image" {
  description = "Consumer image (deploy/consumer.Dockerfile), ideally by digest. null skips the Cloud Run services until images are pushed."
  type        = string
  default     = null
}

variable "gateway_public" {
  description = "Let any client reach the gateway (it authenticates API keys itself). Uses invoker_iam_disabled, never an allUsers binding."
  type        = bool
  default     = true
}

variable "gateway_min_instances" {
  description = "Gateway instances kept warm."
  type        = number
  default     = 1
}

variable "gateway_max_instances" {
  description = "Upper bound on gateway instances."
  type        = number
  default     = 20
}

variable "gateway_concurrency" {
  description = "Requests one gateway instance serves at once; publishing is I/O bound."
  type        = number
  default     = 200
}

variable "gateway_resources" {
  description = "Gateway CPU and memory limits."
  type        = object({ cpu = string, memory = string })
  default     = { cpu = "1", memory = "512Mi" }
}

variable "consumer_min_instances" {
  description = "Consumer instances; at least one, since a pull subscriber receives no requests to wake it."
  type        = number
  default     = 1

  validation {
    condition     = var.consumer_min_instances >= 1
    error_message = "consumer_min_instances must be at least 1: nothing would pull the subscriptions."
  }
}

variable "consumer_max_instances" {
  description = "Upper bound on consumer instances; watermark leases coordinate them."
  type        = number
  default     = 4
}

variable "consumer_resources" {
  description = "Consumer CPU and memory limits (flow control holds up to 128 MiB of messages)."
  type        = object({ cpu = string, memory = string })
  default     = { cpu = "1", memory = "1Gi" }
}

variable "service_env" {
  description = "Extra environment variables for both services (e.g. HOURGLASS_LOG_LEVEL)."
  type        = map(string)
  default     = {}
}

variable "prometheus_sidecar_image" {
  description = "Managed Service for Prometheus sidecar: scrapes :8080/metrics of each service into Cloud Monitoring. null disables it (and the PromQL alerts have no data)."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
}

variable "api_keys_secret_version" {
  description = "Version of the API key secret the gateway mounts (a number pins it; \"latest\" follows rotations on the next revision)."
  type        = string
  default     = "latest"
}

variable "create_artifact_registry" {
  description = "Create a Docker repository named after the prefix for the two images."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------
# Alerts
# ---------------------------------------------------------------------------------------

variable "notification_channels" {
  description = "Cloud Monitoring notification channel ids that every alert notifies."
  type        = list(string)
  default     = []
}

variable "alert_oldest_unacked_seconds" {
  description = "Alert when a consumer subscription's oldest unacked message is older than this."
  type        = number
  default     = 900
}

variable "alert_watermark_lag_seconds" {
  description = "Alert when an event type's watermark trails the wall clock by more than this."
  type        = number
  default     = 900
}

variable "alert_dead_letter_messages" {
  description = "Alert when a dead-letter subscription holds more than this many messages (0: any)."
  type        = number
  default     = 0
}

variable "watermark_lag_metric" {
  description = "Prometheus gauge the consumer exports: clock minus the event type's global watermark in seconds, label event_type."
  type        = string
  default     = "hourglass_consumer_watermark_lag_seconds"
}

variable "windows_closed_metric" {
  description = "Prometheus counter the consumer exports: windows finalized (manifest created), label event_type. Every hour closes, empty or not."
  type        = string
  default     = "hourglass_consumer_windows_closed_total"
}

# ---------------------------------------------------------------------------------------
# BigQuery
# ---------------------------------------------------------------------------------------

variable "bigquery_dataset_id" {
  description = "Dataset of the external tables; null derives it from the prefix (hyphens become underscores)."
  type        = string
  default     = null
}

variable "analyst_members" {
  description = "Principals (user:, group:, serviceAccount:) that may query the external tables: dataset dataViewer and bucket objectViewer."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.analyst_members : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "analyst_members must name principals; the data is never public."
  }
}

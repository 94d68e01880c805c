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

variable "closed_notices_topic" {
  description = "The closed-window notice topic, closedNoticeTopic() in packages/common/src/naming.ts. Generated."
  type        = string
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

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub allows 5..100 delivery attempts."
  }
}

variable "retention_seconds" {
  description = "Consumer subscription backlog retention (Defaults.retention): a week of consumer outage loses nothing."
  type        = number
  default     = 604800

  validation {
    condition     = var.retention_seconds >= 600 && var.retention_seconds <= 604800
    error_message = "Pub/Sub subscription retention is 600..604800 seconds."
  }
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

  validation {
    # HCL's && evaluates both sides, so the number is read only once the format is known good.
    condition     = can(regex("^[0-9]+(\\.[0-9]+)?s$", var.retry_minimum_backoff)) ? tonumber(trimsuffix(var.retry_minimum_backoff, "s")) <= 600 : false
    error_message = "retry_minimum_backoff must be a duration in seconds such as \"1s\", 0..600s."
  }
}

variable "retry_maximum_backoff" {
  description = "Redelivery backoff after a nack, upper bound (same as the local provisioner)."
  type        = string
  default     = "60s"

  validation {
    # Pub/Sub allows up to 600s, and not below the minimum backoff.
    condition = (
      can(regex("^[0-9]+(\\.[0-9]+)?s$", var.retry_maximum_backoff)) && can(regex("^[0-9]+(\\.[0-9]+)?s$", var.retry_minimum_backoff))
      ? tonumber(trimsuffix(var.retry_maximum_backoff, "s")) <= 600 && tonumber(trimsuffix(var.retry_maximum_backoff, "s")) >= tonumber(trimsuffix(var.retry_minimum_backoff, "s"))
      : false
    )
    error_message = "retry_maximum_backoff must be a duration in seconds such as \"60s\", at most 600s and at least retry_minimum_backoff."
  }
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

variable "soft_delete_retention_seconds" {
  description = "Soft delete retention of the bucket: 0 turns it off (the staging and lease churn would be kept and billed); 604800..7776000 keeps every deleted object that long, churn included."
  type        = number
  default     = 0

  validation {
    condition     = var.soft_delete_retention_seconds == 0 || (var.soft_delete_retention_seconds >= 604800 && var.soft_delete_retention_seconds <= 7776000)
    error_message = "soft_delete_retention_seconds must be 0 or 604800..7776000 (7 to 90 days)."
  }
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

variable "consumer_instances" {
  description = "Consumer instances, fixed (manual scaling): a pull subscriber receives no requests to scale on. Watermark leases coordinate them."
  type        = number
  default     = 2

  validation {
    condition     = var.consumer_instances >= 1
    error_message = "consumer_instances must be at least 1: nothing would pull the subscriptions."
  }
}

variable "consumer_replicas_per_type" {
  description = "How many live consumer instances pull each event type (HOURGLASS_REPLICAS_PER_TYPE): \"all\", or a number k with per-type exceptions, e.g. \"2,track_played=all\". With k, each type is pulled by k instances picked from the live leases, and an instance that starts or stops moves about k/consumer_instances of the types."
  type        = string
  default     = "all"

  validation {
    condition     = can(regex("^(all|[1-9][0-9]{0,5})(,[A-Za-z0-9_.-]+=(all|[1-9][0-9]{0,5}))*$", var.consumer_replicas_per_type))
    error_message = "consumer_replicas_per_type must be \"all\" or a whole number >= 1, then optional ,<event_type>=<n|all> exceptions, e.g. \"2,track_played=all\"."
  }
}

variable "consumer_resources" {
  description = "Consumer CPU and memory limits (memory in Mi or Gi). The memory must hold the flow-control budget: see consumer_flow_max_bytes."
  type        = object({ cpu = string, memory = string })
  default     = { cpu = "1", memory = "1Gi" }

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.consumer_resources.memory))
    error_message = "consumer_resources.memory must be a whole number of Mi or Gi, e.g. 1Gi."
  }
}

variable "consumer_flow_max_bytes" {
  description = "Unacked message bytes one consumer process holds, over all its subscriptions (HOURGLASS_FLOW_MAX_BYTES, Defaults.flowMaxBytes). The memory limit must be at least 3 x this + 384 MiB (run.tf)."
  type        = number
  default     = 134217728

  validation {
    condition     = var.consumer_flow_max_bytes >= 1048576
    error_message = "consumer_flow_max_bytes must be at least 1 MiB."
  }
}

variable "consumer_flow_max_messages" {
  description = "Unacked messages one consumer process holds, over all its subscriptions (HOURGLASS_FLOW_MAX_MESSAGES, Defaults.flowMaxMessages)."
  type        = number
  default     = 2000

  validation {
    condition     = var.consumer_flow_max_messages >= 1 && var.consumer_flow_max_messages <= 1000000
    error_message = "consumer_flow_max_messages must be 1..1000000."
  }
}

variable "service_env" {
  description = "Extra environment variables for both services (e.g. HOURGLASS_LOG_LEVEL)."
  type        = map(string)
  default     = {}

  validation {
    # Each consumer process must pick its own replica id: instances share hostname and PID.
    condition     = !contains(keys(var.service_env), "HOURGLASS_REPLICA_ID")
    error_message = "service_env must not set HOURGLASS_REPLICA_ID: every consumer process picks a unique one itself."
  }
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

variable "deadlettered_metric" {
  description = "Prometheus counter the consumer exports: undecodable messages written to _deadletter/ and acked, label event_type."
  type        = string
  default     = "hourglass_consumer_messages_deadlettered_total"
}

variable "store_errors_metric" {
  description = "Prometheus counter the consumer exports: failed object store operations, labels event_type and operation."
  type        = string
  default     = "hourglass_consumer_store_errors_total"
}

variable "alert_store_errors" {
  description = "Alert when an event type has more failed store operations than this in 10 minutes, for 5 minutes (single failures are retried)."
  type        = number
  default     = 10
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
  description = "Principals (user:, group:, serviceAccount:) that may query the external tables: dataset dataViewer, project bigquery.jobUser, and bucket objectViewer on closed hours only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.analyst_members : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "analyst_members must name principals; the data is never public."
  }
}

variable "closed_notices_example_subscription" {
  description = "Create the example downstream subscription on the closed-window notice topic (<closed_notices_topic>-downstream-example)."
  type        = bool
  default     = true
}

# Gateway and consumer on Cloud Run (v2). Both listen on 8080 (Cloud Run's PORT), where
# the Managed Service for Prometheus sidecar scrapes /metrics into Cloud Monitoring as
# prometheus.googleapis.com/<name>/gauge, which the PromQL alerts in monitoring.tf read.
# The services are created once both images are set (see README: bootstrap).
#
# The consumer is a Cloud Run service in MANUAL scaling mode: exactly consumer_instances
# instances, never scaled on requests or CPU (a pull subscriber gets no requests, and a
# scale-in would SIGTERM instances holding messages). Not a worker pool: in google 6.50.0
# google_cloud_run_v2_worker_pool containers have no probes, so the /healthz liveness probe
# could not restart a wedged consumer (infra/README.md, Consumer runtime).

locals {
  # Configuration shared by both services; names match their typed config (loadConfig).
  common_env = merge({
    HOURGLASS_PROJECT_ID = var.project_id
    HOURGLASS_PREFIX     = var.prefix
  }, var.service_env)

  gateway_env = merge(local.common_env, {
    HOURGLASS_GATEWAY_PORT  = "8080"
    HOURGLASS_API_KEYS_FILE = "${local.api_keys_dir}/api-keys.json"
    # Types whose events are published one per message, so the topic schema can validate them.
    HOURGLASS_UNBUNDLED_TYPES = join(",", sort(keys(local.schema_types)))
  })

  # Never HOURGLASS_REPLICA_ID: instances share hostname and PID 1, so each process picks its
  # own unique id at start (variables.tf refuses it in service_env too).
  consumer_env = merge(local.common_env, {
    HOURGLASS_STORE         = "gs://${google_storage_bucket.store.name}"
    HOURGLASS_CONSUMER_PORT = "8080"
    # Process-wide budgets of unacked messages; consumer_resources.memory is sized against them.
    HOURGLASS_FLOW_MAX_BYTES    = tostring(var.consumer_flow_max_bytes)
    HOURGLASS_FLOW_MAX_MESSAGES = tostring(var.consumer_flow_max_messages)
    # The consumer keeps held messages' deadlines at the subscriptions' value.
    HOURGLASS_ACK_DEADLINE = "${var.ack_deadline_seconds}s"
    HOURGLASS_GRACE        = "${var.grace_seconds}s"
    # One notice per closed window to google_pubsub_topic.closed_notices (<prefix>-closed).
    HOURGLASS_CLOSED_NOTICES = "true"
    # A large window is finalized as shard jobs over every replica (the default), which spill
    # nothing. Should they be turned off, Cloud Run's filesystem is memory: shards reread staging
    # from the bucket instead of spilling to TMPDIR, which would count against the instance memory.
    HOURGLASS_FINALIZE_SPILL = "none"
    # How many live instances pull each type (all, or k with per-type exceptions): with many
    # types, k keeps subscriptions and staged files at k x types instead of instances x types.
    HOURGLASS_REPLICAS_PER_TYPE = var.consumer_replicas_per_type
    HOURGLASS_GRACE_BY_TYPE = join(",", [
      for name in sort(keys(local.type_settings)) : "${name}=${local.type_settings[name].grace_seconds}s"
      if local.type_settings[name].grace_seconds != var.grace_seconds
    ])
  })

  sidecars = var.prometheus_sidecar_image == null ? [] : [var.prometheus_sidecar_image]

  # Consumer memory: held messages cost about their size received, again inflated and decoded
  # into records, and again in the staged Avro buffer being written (factor 3); the base is
  # Node and the libraries, per-type stager buffers, finalize and the dedup id set. A test in
  # tests/infra and the precondition below keep the limit at or above the sum.
  consumer_memory_overhead_factor = 3
  consumer_memory_base_mib        = 384
  consumer_memory_needed_mib      = ceil(var.consumer_flow_max_bytes * local.consumer_memory_overhead_factor / 1048576) + local.consumer_memory_base_mib
  consumer_memory_limit_mib = (
    endswith(var.consumer_resources.memory, "Gi")
    ? tonumber(trimsuffix(var.consumer_resources.memory, "Gi")) * 1024
    : tonumber(trimsuffix(var.consumer_resources.memory, "Mi"))
  )

  api_keys_dir = "/secrets/hourglass"
}

# The gateway's API key file (a JSON array of hashed keys, see docs/http-api.md). Terraform
# creates the secret only; its content is added with gcloud so no key reaches the state.
resource "google_secret_manager_secret" "api_keys" {
  secret_id = "${var.prefix}-api-keys"
  labels    = local.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

resource "google_cloud_run_v2_service" "gateway" {
  count = local.deploy_services ? 1 : 0

  name                = "${var.prefix}-gateway"
  location            = var.region
  labels              = local.labels
  deletion_protection = var.deletion_protection

  ingress = var.gateway_public ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  # Public without an allUsers binding; clients authenticate with API keys at the gateway.
  invoker_iam_disabled = var.gateway_public

  template {
    service_account                  = google_service_account.gateway.email
    max_instance_request_concurrency = var.gateway_concurrency
    # A request waits at most for one publish (Defaults.publishTimeout) plus transfer.
    timeout = "60s"

    scaling {
      min_instance_count = var.gateway_min_instances
      max_instance_count = var.gateway_max_instances
    }

    containers {
      name  = "gateway"
      image = var.gateway_image

      ports {
        container_port = 8080
      }

      resources {
        limits            = var.gateway_resources
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.gateway_env
        content {
          name  = env.key
          value = env.value
        }
      }

      volume_mounts {
        name       = "api-keys"
        mount_path = local.api_keys_dir
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 15
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
      }
    }

    dynamic "containers" {
      for_each = local.sidecars
      content {
        name       = "metrics"
        image      = containers.value
        depends_on = ["gateway"]
      }
    }

    volumes {
      name = "api-keys"
      secret {
        secret = google_secret_manager_secret.api_keys.secret_id
        items {
          version = var.api_keys_secret_version
          path    = "api-keys.json"
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_pubsub_topic_iam_member.gateway_publisher,
    google_secret_manager_secret_iam_member.gateway_api_keys,
    google_project_iam_member.gateway_telemetry,
  ]
}

resource "google_cloud_run_v2_service" "consumer" {
  count = local.deploy_services ? 1 : 0

  name                = "${var.prefix}-consumer"
  location            = var.region
  labels              = local.labels
  deletion_protection = var.deletion_protection

  # Nobody calls the consumer; its HTTP port serves health checks and metrics only.
  ingress = "INGRESS_TRAFFIC_INTERNAL_ONLY"

  # Exactly this many instances, whatever the traffic: watermark leases coordinate them.
  scaling {
    scaling_mode          = "MANUAL"
    manual_instance_count = var.consumer_instances
  }

  template {
    service_account = google_service_account.consumer.email

    containers {
      name  = "consumer"
      image = var.consumer_image

      ports {
        container_port = 8080
      }

      resources {
        limits = var.consumer_resources
        # Instance-based billing: a pull subscriber works between requests, CPU must stay allocated.
        cpu_idle          = false
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.consumer_env
        content {
          name  = env.key
          value = env.value
        }
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 30
      }

      # /healthz answers 503 when a subscription's pull loop has stopped for good or is stuck,
      # or the tick loop is stalled; a store or Pub/Sub outage alone is not a reason to restart
      # (it shows in /readyz and the alerts). Six failures 10 s apart: a minute wedged.
      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 10
        timeout_seconds   = 5
        failure_threshold = 6
      }
    }

    dynamic "containers" {
      for_each = local.sidecars
      content {
        name       = "metrics"
        image      = containers.value
        depends_on = ["consumer"]
      }
    }
  }

  lifecycle {
    precondition {
      condition     = local.consumer_memory_needed_mib <= local.consumer_memory_limit_mib
      error_message = "consumer_resources.memory must be at least ${local.consumer_memory_needed_mib} MiB: consumer_flow_max_bytes x ${local.consumer_memory_overhead_factor} + ${local.consumer_memory_base_mib} MiB base."
    }
  }

  depends_on = [
    google_project_service.apis,
    google_pubsub_subscription_iam_member.consumer_subscriber,
    google_storage_bucket_iam_member.consumer_objects,
    google_project_iam_member.consumer_telemetry,
  ]
}

# Gateway and consumer on Cloud Run (v2). Both listen on 8080 (Cloud Run's PORT), where
# the Managed Service for Prometheus sidecar scrapes /metrics into Cloud Monitoring as
# prometheus.googleapis.com/<name>/gauge, which the PromQL alerts in monitoring.tf read.
# The services are created once both images are set (see README: bootstrap).

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

  consumer_env = merge(local.common_env, {
    HOURGLASS_STORE         = "gs://${google_storage_bucket.store.name}"
    HOURGLASS_CONSUMER_PORT = "8080"
    # The consumer keeps held messages' deadlines at the subscriptions' value.
    HOURGLASS_ACK_DEADLINE = "${var.ack_deadline_seconds}s"
    HOURGLASS_GRACE        = "${var.grace_seconds}s"
    HOURGLASS_GRACE_BY_TYPE = join(",", [
      for name in sort(keys(local.type_settings)) : "${name}=${local.type_settings[name].grace_seconds}s"
      if local.type_settings[name].grace_seconds != var.grace_seconds
    ])
  })

  sidecars = var.prometheus_sidecar_image == null ? [] : [var.prometheus_sidecar_image]

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

  template {
    service_account = google_service_account.consumer.email

    scaling {
      min_instance_count = var.consumer_min_instances
      max_instance_count = var.consumer_max_instances
    }

    containers {
      name  = "consumer"
      image = var.consumer_image

      ports {
        container_port = 8080
      }

      resources {
        limits = var.consumer_resources
        # A pull subscriber works between requests: CPU must stay allocated.
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
        depends_on = ["consumer"]
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_pubsub_subscription_iam_member.consumer_subscriber,
    google_storage_bucket_iam_member.consumer_objects,
    google_project_iam_member.consumer_telemetry,
  ]
}

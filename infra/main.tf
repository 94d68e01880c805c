provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  labels = merge({ app = "hourglass", pipeline = var.prefix }, var.labels)

  # Service account ids are 6..30 characters and may not end with a hyphen.
  short_prefix = replace(substr(var.prefix, 0, 21), "/-+$/", "")

  bucket_location = coalesce(var.bucket_location, var.region)
  dataset_id      = coalesce(var.bigquery_dataset_id, replace(var.prefix, "-", "_"))

  # Effective settings of every event type: its override, else the pipeline default.
  type_settings = {
    for name in keys(var.event_types) : name => {
      grace_seconds         = coalesce(try(var.type_overrides[name].grace_seconds, null), var.grace_seconds)
      retention_seconds     = coalesce(try(var.type_overrides[name].retention_seconds, null), var.retention_seconds)
      max_delivery_attempts = coalesce(try(var.type_overrides[name].max_delivery_attempts, null), var.max_delivery_attempts)
      one_event_per_message = try(var.type_overrides[name].one_event_per_message, false)
    }
  }

  # Only unbundled types carry a topic schema: a bundle of many events is not one Avro datum.
  schema_types = { for name, t in var.event_types : name => t if local.type_settings[name].one_event_per_message }

  # Pub/Sub's own agent moves messages to dead-letter topics.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  deploy_services = var.gateway_image != null && var.consumer_image != null

  apis = concat(
    [
      "artifactregistry.googleapis.com",
      "bigquery.googleapis.com",
      "iam.googleapis.com",
      "logging.googleapis.com",
      "monitoring.googleapis.com",
      "pubsub.googleapis.com",
      "run.googleapis.com",
      "secretmanager.googleapis.com",
      "storage.googleapis.com",
    ],
    var.kms_key_name == null ? [] : ["cloudkms.googleapis.com"],
  )
}

resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project = var.project_id
  service = each.value
  # Other workloads in the project may use the same APIs.
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  count = var.create_artifact_registry ? 1 : 0

  location      = var.region
  repository_id = var.prefix
  format        = "DOCKER"
  description   = "Hourglass gateway and consumer images"
  labels        = local.labels

  depends_on = [google_project_service.apis]
}

# Least privilege. Every grant is on one resource (topic, subscription, bucket, dataset,
# key) except the project-level roles that only let a principal report about itself
# (metrics, logs) or run its own BigQuery jobs; no project-level data access, no admin or
# editor role anywhere, no public member. tests/infra checks this file against that rule.

locals {
  # Analysts read closed hours only: objects under a type's prefix and the reference schemas,
  # and lists under a type's prefix (what a BigQuery wildcard URI does). _staging/ and
  # _deadletter/ hold raw messages and stay out of reach. An IAM condition works on any
  # bucket with uniform access, HNS included; managed folders would have to be created per
  # type before the consumer renames hours into them.
  analyst_object_prefixes = concat([for t in sort(keys(var.event_types)) : "${t}/"], ["_schemas/"])
  analyst_read_condition = join(" || ", concat(
    [for p in local.analyst_object_prefixes : "resource.name.startsWith(\"projects/_/buckets/${var.bucket_name}/objects/${p}\")"],
    [for t in sort(keys(var.event_types)) : "api.getAttribute(\"storage.googleapis.com/objectListPrefix\", \"\").startsWith(\"${t}/\")"],
  ))
}

resource "google_service_account" "gateway" {
  account_id   = "${local.short_prefix}-gateway"
  display_name = "Hourglass gateway (${var.prefix})"
  description  = "Publishes validated events to the event topics."

  depends_on = [google_project_service.apis]
}

resource "google_service_account" "consumer" {
  account_id   = "${local.short_prefix}-consumer"
  display_name = "Hourglass consumer (${var.prefix})"
  description  = "Pulls the consumer subscriptions and writes hourly buckets."

  depends_on = [google_project_service.apis]
}

# --- gateway: publish to the event topics, nothing else -------------------------------

resource "google_pubsub_topic_iam_member" "gateway_publisher" {
  for_each = var.event_types

  topic  = google_pubsub_topic.events[each.key].name
  role   = "roles/pubsub.publisher"
  member = google_service_account.gateway.member
}

# /readyz checks that every event topic exists (topics.get), which publisher does not include.
resource "google_pubsub_topic_iam_member" "gateway_viewer" {
  for_each = var.event_types

  topic  = google_pubsub_topic.events[each.key].name
  role   = "roles/pubsub.viewer"
  member = google_service_account.gateway.member
}

# Reads its API key file, mounted from Secret Manager.
resource "google_secret_manager_secret_iam_member" "gateway_api_keys" {
  secret_id = google_secret_manager_secret.api_keys.id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.gateway.member
}

# --- consumer: its subscriptions and its bucket ------------------------------------------

resource "google_pubsub_subscription_iam_member" "consumer_subscriber" {
  for_each = var.event_types

  subscription = google_pubsub_subscription.consumer[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.consumer.member
}

# The closer publishes a notice per closed window to the notice topic, nothing else.
resource "google_pubsub_topic_iam_member" "consumer_closed_notices" {
  topic  = google_pubsub_topic.closed_notices.name
  role   = "roles/pubsub.publisher"
  member = google_service_account.consumer.member
}

# Creates staged and final files (create-if-absent), reads them back, deletes staging, and
# publishes an hour with an HNS folder rename. objectUser has every permission that takes
# (storage.objects.*, storage.folders.create/rename/delete/get/list) and, unlike objectAdmin,
# no setIamPolicy on objects or managed folders.
resource "google_storage_bucket_iam_member" "consumer_objects" {
  bucket = google_storage_bucket.store.name
  role   = "roles/storage.objectUser"
  member = google_service_account.consumer.member
}

# --- both: report about themselves ------------------------------------------------------

# Listed twice on purpose: each grant stays readable (and checkable) where it is made.
# No roles/cloudtrace.agent: the services export no traces (add it with a trace exporter).
resource "google_project_iam_member" "gateway_telemetry" {
  for_each = toset(["roles/monitoring.metricWriter", "roles/logging.logWriter"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.gateway.member
}

resource "google_project_iam_member" "consumer_telemetry" {
  for_each = toset(["roles/monitoring.metricWriter", "roles/logging.logWriter"])

  project = var.project_id
  role    = each.value
  member  = google_service_account.consumer.member
}

# --- Pub/Sub service agent: dead-lettering -------------------------------------------------

# Forwards undeliverable messages to the dead-letter topics...
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = var.event_types

  topic  = google_pubsub_topic.dead_letter[each.key].name
  role   = "roles/pubsub.publisher"
  member = local.pubsub_service_agent

  depends_on = [google_project_service.apis]
}

# ...and acks them on the source subscriptions once forwarded.
resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each = var.event_types

  subscription = google_pubsub_subscription.consumer[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent

  depends_on = [google_project_service.apis]
}

# --- analysts: read closed hours through BigQuery ------------------------------------------

# External tables read the files with the querying principal's own credentials.
resource "google_storage_bucket_iam_member" "analyst_objects" {
  for_each = toset(var.analyst_members)

  bucket = google_storage_bucket.store.name
  role   = "roles/storage.objectViewer"
  member = each.value

  condition {
    title       = "closed hours only"
    description = "Objects and listings under the event type prefixes and _schemas/; never _staging/ or _deadletter/ (raw messages)."
    expression  = local.analyst_read_condition
  }
}

# A query is a job in the project: without jobUser an analyst can see the tables but not query them.
resource "google_project_iam_member" "analyst_jobs" {
  for_each = toset(var.analyst_members)

  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = each.value
}

resource "google_bigquery_dataset_iam_member" "analyst_tables" {
  for_each = toset(var.analyst_members)

  dataset_id = google_bigquery_dataset.events.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = each.value
}

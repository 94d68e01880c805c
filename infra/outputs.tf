output "gateway_url" {
  description = "Base URL of the gateway: POST /v1/events. null until the images are set."
  value       = one(google_cloud_run_v2_service.gateway[*].uri)
}

output "consumer_service" {
  description = "Cloud Run service name of the consumer. null until the images are set."
  value       = one(google_cloud_run_v2_service.consumer[*].name)
}

output "bucket" {
  description = "Store URL of the hourly buckets (the consumer's HOURGLASS_STORE)."
  value       = "gs://${google_storage_bucket.store.name}"
}

output "image_repository" {
  description = "Where to push the gateway and consumer images (docker tag prefix)."
  value       = var.create_artifact_registry ? "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images[0].repository_id}" : null
}

output "topics" {
  description = "Event type -> Pub/Sub topic id: real-time subscribers attach here."
  value       = { for name, t in google_pubsub_topic.events : name => t.id }
}

output "subscriptions" {
  description = "Event type -> consumer subscription id."
  value       = { for name, s in google_pubsub_subscription.consumer : name => s.id }
}

output "dead_letter_subscriptions" {
  description = "Event type -> subscription holding its dead letters."
  value       = { for name, s in google_pubsub_subscription.dead_letter : name => s.id }
}

output "service_accounts" {
  description = "Emails of the gateway and consumer service accounts."
  value = {
    gateway  = google_service_account.gateway.email
    consumer = google_service_account.consumer.email
  }
}

output "bigquery_tables" {
  description = "Event type -> fully qualified external table (project.dataset.table)."
  value       = { for name, t in google_bigquery_table.events : name => "${var.project_id}.${t.dataset_id}.${t.table_id}" }
}

output "closed_notices_topic" {
  description = "Topic id of the closed-window notices: downstream jobs subscribe here."
  value       = google_pubsub_topic.closed_notices.id
}

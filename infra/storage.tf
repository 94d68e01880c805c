# The bucket of closed hours:
#   <event_type>/dt=YYYY-MM-DD/hour=HH/part-*.avro   final files, immutable once _SUCCESS exists
#   _staging/ _watermarks/ _deadletter/               consumer bookkeeping, outside every type prefix
#   _schemas/<event_type>/v<N>.avro                   schema-only files BigQuery reads table schemas from

data "google_storage_project_service_account" "gcs" {
  count = var.kms_key_name == null ? 0 : 1
}

# CMEK: the Cloud Storage agent must be able to use the key before the bucket refers to it.
resource "google_kms_crypto_key_iam_member" "bucket_key" {
  count = var.kms_key_name == null ? 0 : 1

  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = "serviceAccount:${data.google_storage_project_service_account.gcs[0].email_address}"
}

resource "google_storage_bucket" "store" {
  name     = var.bucket_name
  location = local.bucket_location
  labels   = local.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = !var.deletion_protection

  # An hour is published with one atomic folder rename (_staging/<type>/<partition>/_publish/
  # to <type>/dt=.../hour=HH/), which needs a hierarchical namespace (and uniform access).
  hierarchical_namespace {
    enabled = true
  }

  # Soft delete keeps (and bills) every deleted or overwritten object for 7 days by default,
  # bucket-wide. Here thousands of staged files an hour are deleted after finalize, and leases
  # and watermarks are rewritten every second: soft delete would keep a week of that churn.
  # Closed hours are never deleted or overwritten by the pipeline, so it protects them only
  # against a human deleting them; deletion_protection and IAM do that job instead.
  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_seconds
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  # Staged part files are deleted by the consumer after it finalizes their hour; this
  # catches what a crash left behind, long after any hour could still need it.
  lifecycle_rule {
    condition {
      age            = var.staging_max_age_days
      matches_prefix = ["_staging/"]
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.apis, google_kms_crypto_key_iam_member.bucket_key]
}

# One schema-only Avro file per type, named by version so a new schema is a new object.
resource "google_storage_bucket_object" "reference_schema" {
  for_each = var.event_types

  bucket       = google_storage_bucket.store.name
  name         = "_schemas/${each.key}/v${each.value.schema_version}.avro"
  source       = "${path.module}/${each.value.reference_avro}"
  content_type = "application/avro"
}

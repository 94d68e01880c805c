# One external table per event type over its closed hours; no load job. The files are
# Hive-partitioned (<type>/dt=YYYY-MM-DD/hour=HH/), so dt and hour become columns and
# filters on them prune partitions. Staging lives under _staging/, outside every type
# prefix, and final files appear only at finalize, right before _SUCCESS: a partition is
# visible only once its hour is closing (see README, Querying).

resource "google_bigquery_dataset" "events" {
  dataset_id  = local.dataset_id
  location    = local.bucket_location
  description = "Hourglass closed hours (external tables over gs://${google_storage_bucket.store.name})"
  labels      = local.labels

  depends_on = [google_project_service.apis]
}

resource "google_bigquery_table" "events" {
  for_each = var.event_types

  dataset_id          = google_bigquery_dataset.events.dataset_id
  table_id            = each.key
  description         = "${each.key} events, schema v${each.value.schema_version}; one partition per closed hour."
  labels              = local.labels
  deletion_protection = var.deletion_protection

  external_data_configuration {
    source_format = "AVRO"
    autodetect    = true
    source_uris   = ["gs://${google_storage_bucket.store.name}/${each.key}/*.avro"]
    # The newest schema, also before the first hour closes (there is no data file to read yet).
    reference_file_schema_uri = "gs://${google_storage_bucket.store.name}/${google_storage_bucket_object.reference_schema[each.key].name}"

    hive_partitioning_options {
      mode              = "CUSTOM"
      source_uri_prefix = "gs://${google_storage_bucket.store.name}/${each.key}/{dt:DATE}/{hour:INTEGER}"
      # A query must filter on dt (and hour): a full scan of every closed hour is never an accident.
      require_partition_filter = true
    }

    avro_options {
      # meta.gateway_ts (timestamp-millis) becomes TIMESTAMP, not INT64.
      use_avro_logical_types = true
    }
  }
}

# Six alerts. Two read Pub/Sub's own metrics per event type; four read the consumer's
# Prometheus metrics (scraped by the sidecar in run.tf) with PromQL, one series per type:
#   hourglass_consumer_watermark_lag_seconds{event_type}          gauge: clock - global watermark
#   hourglass_consumer_windows_closed_total{event_type}           counter: manifests created
#   hourglass_consumer_messages_deadlettered_total{event_type}    counter: undecodable messages kept in _deadletter/
#   hourglass_consumer_store_errors_total{event_type,operation}   counter: failed object store operations
# Every hour of every type gets a manifest, even an empty one, so a type that closed no
# window for longer than window + grace + slack has an hour that is not closing. A consumer
# (or its sidecar) that is down exports nothing, and a comparison over no series never
# fires: the lag and closing alerts also fire when their series are absent.

locals {
  consumer_namespace = "${var.prefix}-consumer" # the sidecar labels series with the service name
  consumer_selector  = "{namespace=\"${local.consumer_namespace}\"}"
  # One window (60 min) plus the longest grace of any type plus 30 minutes of slack.
  close_alert_range_seconds = 3600 + max([for s in values(local.type_settings) : s.grace_seconds]...) + 1800

  # The PromQL alerts on the consumer's own metrics, one policy each.
  consumer_alerts = {
    watermark_lag = {
      title     = "watermark lag"
      condition = "watermark more than ${var.alert_watermark_lag_seconds}s behind, or no series"
      query     = "max by (event_type) (${var.watermark_lag_metric}${local.consumer_selector}) > ${var.alert_watermark_lag_seconds} or absent(${var.watermark_lag_metric}${local.consumer_selector})"
      duration  = "300s"
      help      = "An event type's watermark is not advancing: hours cannot close. Usually a consumer replica holds an old unstaged event, or a dead replica's lease has not expired. With no series at all (absent): the consumer or its metrics sidecar is down. See infra/README.md, Alerts."
    }
    windows_not_closed = {
      title     = "hours not closed"
      condition = "no hour closed in ${local.close_alert_range_seconds}s, or no series"
      query     = "sum by (event_type) (increase(${var.windows_closed_metric}${local.consumer_selector}[${local.close_alert_range_seconds}s])) < 1 or absent_over_time(${var.windows_closed_metric}${local.consumer_selector}[${local.close_alert_range_seconds}s])"
      duration  = "300s"
      help      = "An event type closed no hour for longer than an hour plus its grace: finalize fails (storage errors, permissions), the watermark is stuck, or (no series at all) the consumer or its metrics sidecar is down. Downstream jobs wait for _SUCCESS. See infra/README.md, Alerts."
    }
    dead_lettered = {
      title     = "undecodable messages dead-lettered"
      condition = "messages written to _deadletter/ in the last 10 minutes"
      query     = "sum by (event_type) (increase(${var.deadlettered_metric}${local.consumer_selector}[10m])) > 0"
      duration  = "0s"
      help      = "The consumer could not decode messages of a type (bad bundle, unknown schema version) and kept them under `_deadletter/` in the bucket instead of redelivering them forever. Nothing else is lost; inspect the files and the producer. See infra/README.md, Dead letters."
    }
    store_errors = {
      title     = "object store errors"
      condition = "more than ${var.alert_store_errors} failed store operations in 10 minutes"
      query     = "sum by (event_type) (increase(${var.store_errors_metric}${local.consumer_selector}[10m])) > ${var.alert_store_errors}"
      duration  = "300s"
      help      = "Staging, lease or finalize writes to the bucket keep failing (label `operation`). Messages are nacked and redelivered, so nothing is lost while it lasts, but delivery attempts are spent and hours close late. Check bucket permissions, quota and Cloud Storage status. See infra/README.md, Alerts."
    }
  }
}

resource "google_monitoring_alert_policy" "oldest_unacked" {
  for_each = var.event_types

  display_name          = "${var.prefix} ${each.key}: consumer is not keeping up"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "oldest unacked message in ${each.value.subscription} older than ${var.alert_oldest_unacked_seconds}s"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${each.value.subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/oldest_unacked_message_age\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_oldest_unacked_seconds
      duration        = "300s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages of `${each.key}` wait in `${each.value.subscription}` longer than expected: the consumer is down, too small, or failing to stage (check its logs and the store). Nothing is lost while they wait (retention ${local.type_settings[each.key].retention_seconds}s). See infra/README.md, Alerts."
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  for_each = var.event_types

  display_name          = "${var.prefix} ${each.key}: messages in the dead-letter topic"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "undelivered messages in ${each.value.dead_letter_subscription} above ${var.alert_dead_letter_messages}"
    condition_threshold {
      filter          = "resource.type = \"pubsub_subscription\" AND resource.labels.subscription_id = \"${each.value.dead_letter_subscription}\" AND metric.type = \"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_dead_letter_messages
      duration        = "0s"
      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Messages of `${each.key}` failed ${local.type_settings[each.key].max_delivery_attempts} deliveries and wait in `${each.value.dead_letter_subscription}`. They are kept, not lost: fix the cause, then replay them (infra/README.md, Dead letters)."
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "consumer" {
  for_each = local.consumer_alerts

  display_name          = "${var.prefix}: ${each.value.title}"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = each.value.condition
    condition_prometheus_query_language {
      query               = each.value.query
      duration            = each.value.duration
      evaluation_interval = "60s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = each.value.help
  }

  depends_on = [google_project_service.apis]
}

# Earlier versions had one resource per alert: keep those policies, do not recreate them.
moved {
  from = google_monitoring_alert_policy.watermark_lag
  to   = google_monitoring_alert_policy.consumer["watermark_lag"]
}

moved {
  from = google_monitoring_alert_policy.windows_not_closed
  to   = google_monitoring_alert_policy.consumer["windows_not_closed"]
}

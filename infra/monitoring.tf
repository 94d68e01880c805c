# Four alerts. Two read Pub/Sub's own metrics per event type; two read the consumer's
# Prometheus metrics (scraped by the sidecar in run.tf) with PromQL, one series per type:
#   hourglass_consumer_watermark_lag_seconds{event_type}  gauge: clock - global watermark
#   hourglass_consumer_windows_closed_total{event_type}   counter: manifests created
# Every hour of every type gets a manifest, even an empty one, so a type that closed no
# window for longer than window + grace + slack has an hour that is not closing.

locals {
  consumer_namespace = "${var.prefix}-consumer" # the sidecar labels series with the service name
  # One window (60 min) plus the longest grace of any type plus 30 minutes of slack.
  close_alert_range_seconds = 3600 + max([for s in values(local.type_settings) : s.grace_seconds]...) + 1800
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

resource "google_monitoring_alert_policy" "watermark_lag" {
  display_name          = "${var.prefix}: watermark lag"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "watermark more than ${var.alert_watermark_lag_seconds}s behind"
    condition_prometheus_query_language {
      query               = "max by (event_type) (${var.watermark_lag_metric}{namespace=\"${local.consumer_namespace}\"}) > ${var.alert_watermark_lag_seconds}"
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "An event type's watermark is not advancing: hours cannot close. Usually a consumer replica holds an old unstaged event, or a dead replica's lease has not expired. See infra/README.md, Alerts."
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "windows_not_closed" {
  display_name          = "${var.prefix}: hours not closed"
  combiner              = "OR"
  notification_channels = var.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "no hour closed in ${local.close_alert_range_seconds}s"
    condition_prometheus_query_language {
      query               = "sum by (event_type) (increase(${var.windows_closed_metric}{namespace=\"${local.consumer_namespace}\"}[${local.close_alert_range_seconds}s])) < 1"
      duration            = "300s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "An event type closed no hour for longer than an hour plus its grace: finalize fails (storage errors, permissions) or the watermark is stuck. Downstream jobs wait for _SUCCESS. See infra/README.md, Alerts."
  }

  depends_on = [google_project_service.apis]
}

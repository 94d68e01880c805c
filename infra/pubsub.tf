# One topic, one consumer subscription and one dead-letter topic (with a subscription that
# keeps what lands there) per event type. Every name is read from var.event_types, i.e.
# from resourceNames() in packages/common/src/naming.ts; nothing here builds a name.

resource "google_pubsub_schema" "events" {
  for_each = local.schema_types

  name       = each.value.topic
  type       = "AVRO"
  definition = each.value.avro_schema
  # A changed definition commits a new revision; the topic accepts every revision, so
  # messages written with the previous newest version stay valid.

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "events" {
  for_each = var.event_types

  name = each.value.topic
  labels = merge(local.labels, {
    event_type     = each.key
    schema_version = tostring(each.value.schema_version)
  })

  dynamic "schema_settings" {
    for_each = local.type_settings[each.key].one_event_per_message ? [each.key] : []
    content {
      schema   = google_pubsub_schema.events[schema_settings.value].id
      encoding = "BINARY"
    }
  }

  lifecycle {
    # Guards against `-var prefix=...`: the generated names must carry the same prefix.
    precondition {
      condition     = startswith(each.value.topic, "${var.prefix}-")
      error_message = "event_types was generated for another prefix: run `npx hourglass infra generate --prefix ${var.prefix}`."
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = var.event_types

  name                       = each.value.dead_letter_topic
  message_retention_duration = var.dead_letter_topic_retention
  labels                     = merge(local.labels, { event_type = each.key, role = "dead-letter" })

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "consumer" {
  for_each = var.event_types

  name  = each.value.subscription
  topic = google_pubsub_topic.events[each.key].id

  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = "${local.type_settings[each.key].retention_seconds}s"
  retain_acked_messages      = false

  # Never delete the subscription for inactivity: a paused consumer must not lose its backlog.
  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.key].id
    max_delivery_attempts = local.type_settings[each.key].max_delivery_attempts
  }

  labels = merge(local.labels, { event_type = each.key })
}

# Dead letters wait here for a human (see infra/README.md, "Dead letters"); without a
# subscription Pub/Sub would drop them on arrival.
resource "google_pubsub_subscription" "dead_letter" {
  for_each = var.event_types

  name  = each.value.dead_letter_subscription
  topic = google_pubsub_topic.dead_letter[each.key].id

  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }

  labels = merge(local.labels, { event_type = each.key, role = "dead-letter" })
}

# Closed-window notices: the consumer's closer publishes one message per closed window of every
# type (docs/operations.md, "Closed-window notices"). The name is generated from
# closedNoticeTopic() in packages/common/src/naming.ts: "<prefix>-closed".
resource "google_pubsub_topic" "closed_notices" {
  name                       = var.closed_notices_topic
  message_retention_duration = "604800s"
  labels                     = merge(local.labels, { role = "closed-notices" })

  depends_on = [google_project_service.apis]
}

# An example downstream subscription: a batch job that starts when an hour is complete pulls it
# (filter on the event_type attribute for one type) and skips a notice_id it has already seen.
resource "google_pubsub_subscription" "closed_notices_example" {
  count = var.closed_notices_example_subscription ? 1 : 0

  name   = "${var.closed_notices_topic}-downstream-example"
  topic  = google_pubsub_topic.closed_notices.id
  filter = "attributes.notice_type = \"window.closed\""

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }

  labels = merge(local.labels, { role = "closed-notices" })
}

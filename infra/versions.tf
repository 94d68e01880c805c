terraform {
  # 1.9+: variable validations may refer to other variables (type_overrides checks event_types).
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 6.x: Cloud Run v2 invoker_iam_disabled, PromQL alert conditions, BigQuery reference_file_schema_uri.
      version = "~> 6.14"
    }
  }
}

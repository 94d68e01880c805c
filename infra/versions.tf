terraform {
  # 1.9+: variable validations may refer to other variables (type_overrides checks event_types).
  required_version = ">= 1.9"

  required_providers {
    google = {
      source = "hashicorp/google"
      # Exactly the version whose schema `make infra-validate` checks this directory against
      # (tools/infra-validate reads it from @cdktf/provider-google 16.12.1). Raise both together.
      version = "6.50.0"
    }
  }
}

# Customer churn: custom aggregator and transformer code beside the built-ins.
app "churn" {}

provider "local" {
  parallelism = 2
}

source "customers" {
  format = "csv"
  path   = "data/customers.csv"
}

raw_column "tenure_months" {
  type = "INT"
  min  = 0
  max  = 120
}

raw_column "monthly_charges" {
  type = "FLOAT"
  min  = 0
}

raw_column "total_charges" {
  type = "FLOAT"
  min  = 0
}

raw_column "support_calls" {
  type = "INT"
  min  = 0
}

raw_column "plan" {
  type   = "STRING"
  values = ["basic", "standard", "premium"]
}

raw_column "churned" {
  type   = "STRING"
  values = ["yes", "no"]
}

aggregator "trimmed_mean" {
  path        = "code/trimmed_mean.py"
  output_type = "FLOAT"
}

transformer "charge_ratio" {
  path        = "code/charge_ratio.py"
  output_type = "FLOAT"
  inputs      = ["column", "typical"]
}

aggregate "typical_charge" {
  aggregator = aggregator.trimmed_mean
  input      = raw_column.monthly_charges
  args       = { trim = 0.1 }
}

aggregate "tenure_mean" {
  aggregator = "mean"
  input      = raw_column.tenure_months
}

aggregate "tenure_stddev" {
  aggregator = "stddev"
  input      = raw_column.tenure_months
}

aggregate "plan_vocab" {
  aggregator = "index_string"
  input      = raw_column.plan
}

aggregate "calls_buckets" {
  aggregator = "bucket_boundaries"
  input      = raw_column.support_calls
  args       = { n = 4 }
}

transformed_column "charge_ratio" {
  transformer = transformer.charge_ratio
  inputs      = {
    column  = raw_column.monthly_charges
    typical = aggregate.typical_charge
  }
  args = { bound = 2.0 }
}

transformed_column "tenure_norm" {
  transformer = "normalize"
  inputs      = {
    column = raw_column.tenure_months
    mean   = aggregate.tenure_mean
    stddev = aggregate.tenure_stddev
  }
}

transformed_column "plan_index" {
  transformer = "index_string"
  inputs      = {
    column     = raw_column.plan
    vocabulary = aggregate.plan_vocab
  }
}

transformed_column "calls_bucket" {
  transformer = "bucketize"
  inputs      = {
    column     = raw_column.support_calls
    boundaries = aggregate.calls_buckets
  }
}

transformed_column "total_log" {
  transformer = "log"
  inputs      = { column = raw_column.total_charges }
}

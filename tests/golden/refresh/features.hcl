transformer "winsorize" {
  path        = "code/winsorize.py"
  output_type = "FLOAT"
}

aggregate "amount_mean" {
  aggregator = "mean"
  input      = raw_column.amount
}

aggregate "amount_stddev" {
  aggregator = "stddev"
  input      = raw_column.amount
}

aggregate "country_vocab" {
  aggregator = "index_string"
  input      = raw_column.country
}

aggregate "items_max" {
  aggregator = "max"
  input      = raw_column.items
}

transformed_column "amount_capped" {
  transformer = transformer.winsorize
  inputs      = { column = raw_column.amount }
  args        = { limit = 200 }
}

transformed_column "amount_norm" {
  transformer = "normalize"
  inputs      = {
    column = raw_column.amount
    mean   = aggregate.amount_mean
    stddev = aggregate.amount_stddev
  }
}

transformed_column "country_index" {
  transformer = "index_string"
  inputs      = {
    column     = raw_column.country
    vocabulary = aggregate.country_vocab
  }
}

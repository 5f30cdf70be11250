# An mlp app: a source, its columns, a model and an API. `mlp plan` shows what
# `mlp apply` would build. Every block and attribute is described in docs/language.md of
# mlp's repository; `mlp builtins` lists the aggregators, transformers and estimators.

provider "local" {}

source "houses" {
  format = "csv"
  path   = "data/houses.csv"
}

raw_column "size_m2" {
  type = "FLOAT"
  min  = 0
}

raw_column "rooms" {
  type = "INT"
  min  = 0
}

raw_column "city" {
  type = "STRING"
}

raw_column "price" {
  type = "FLOAT"
}

aggregate "size_mean" {
  aggregator = "mean"
  input      = raw_column.size_m2
}

aggregate "size_stddev" {
  aggregator = "stddev"
  input      = raw_column.size_m2
}

transformed_column "size_norm" {
  transformer = "normalize"
  inputs      = {
    column = raw_column.size_m2
    mean   = aggregate.size_mean
    stddev = aggregate.size_stddev
  }
}

model "price" {
  type      = "regression"
  estimator = "dnn"
  target    = raw_column.price
  features  = [transformed_column.size_norm, raw_column.rooms, raw_column.city]

  training {
    epochs = 50
  }
}

api "price" {
  model = model.price
}

model "returns" {
  type      = "classification"
  estimator = "dnn"
  target    = raw_column.returned
  features  = [
    transformed_column.amount_norm,
    transformed_column.amount_capped,
    transformed_column.country_index,
    raw_column.items,
  ]
  hparams = { hidden_units = [16, 8] }

  training {
    epochs     = 5
    batch_size = 4
    seed       = 0
  }
}

api "returns" {
  model    = model.returns
  replicas = 1
}

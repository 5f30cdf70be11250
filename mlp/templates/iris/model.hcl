model "dnn" {
  type      = "classification"
  estimator = "dnn"
  target    = raw_column.class
  features  = [
    transformed_column.sepal_length_norm,
    transformed_column.sepal_width_norm,
    transformed_column.petal_length_norm,
    raw_column.petal_width,
  ]
  hparams = { hidden_units = [16, 8] }

  training {
    epochs        = var.epochs
    batch_size    = 16
    learning_rate = 0.01
    split         = 0.75
    seed          = 0
  }
}

api "iris" {
  model    = model.dnn
  replicas = 1
}

variable "epochs" {
  default = 30
}

model "churn" {
  type      = "classification"
  estimator = "dnn"
  target    = raw_column.churned
  features  = [
    transformed_column.charge_ratio,
    transformed_column.tenure_norm,
    transformed_column.plan_index,
    transformed_column.calls_bucket,
    transformed_column.total_log,
  ]
  hparams = { hidden_units = [16, 8] }
  balance = "upsample"

  training {
    epochs        = var.epochs
    learning_rate = 0.01
  }
}

api "churn" {
  model = model.churn
}

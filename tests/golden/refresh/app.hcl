# Orders and whether they came back: the app every golden case starts from.
app "returns" {}

provider "local" {
  parallelism = 2
}

source "orders" {
  format = "csv"
  path   = "data/orders.csv"
}

raw_column "amount" {
  type = "FLOAT"
  min  = 0
}

raw_column "items" {
  type = "INT"
  min  = 1
}

raw_column "country" {
  type   = "STRING"
  values = ["de", "fr", "it"]
}

raw_column "returned" {
  type   = "INT"
  values = [0, 1]
}

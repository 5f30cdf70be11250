app "iris" {}

variable "epochs" {
  default     = 100
  description = "training epochs"
}

provider "local" {
  spark_master = "local[*]"
  parallelism  = 2
}

source "iris" {
  format = "csv"
  path   = "data/iris.csv"
  header = true
}

raw_column "sepal_length" {
  type = "FLOAT"
  min  = 0
  max  = 10
}

raw_column "sepal_width" {
  type = "FLOAT"
  min  = 0
  max  = 10
}

raw_column "petal_length" {
  type = "FLOAT"
  min  = 0
  max  = 10
}

raw_column "petal_width" {
  type = "FLOAT"
  min  = 0
  max  = 10
}

raw_column "class" {
  type   = "STRING"
  values = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]
}

aggregate "sepal_length_mean" {
  aggregator = "mean"
  input      = raw_column.sepal_length
}

aggregate "sepal_length_stddev" {
  aggregator = "stddev"
  input      = raw_column.sepal_length
}

aggregate "sepal_width_mean" {
  aggregator = "mean"
  input      = raw_column.sepal_width
}

aggregate "sepal_width_stddev" {
  aggregator = "stddev"
  input      = raw_column.sepal_width
}

aggregate "petal_length_mean" {
  aggregator = "mean"
  input      = raw_column.petal_length
}

aggregate "petal_length_stddev" {
  aggregator = "stddev"
  input      = raw_column.petal_length
}

transformed_column "sepal_length_norm" {
  transformer = "normalize"
  inputs      = {
    column = raw_column.sepal_length
    mean   = aggregate.sepal_length_mean
    stddev = aggregate.sepal_length_stddev
  }
}

transformed_column "sepal_width_norm" {
  transformer = "normalize"
  inputs      = {
    column = raw_column.sepal_width
    mean   = aggregate.sepal_width_mean
    stddev = aggregate.sepal_width_stddev
  }
}

transformed_column "petal_length_norm" {
  transformer = "normalize"
  inputs      = {
    column = raw_column.petal_length
    mean   = aggregate.petal_length_mean
    stddev = aggregate.petal_length_stddev
  }
}

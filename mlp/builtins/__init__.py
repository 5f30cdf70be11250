"""Built-in aggregators, transformers and estimators."""

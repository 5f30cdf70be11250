"""HCL files -> typed, frozen block objects that carry their file and line."""

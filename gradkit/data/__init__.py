"""Generated data sets and local-file loaders (nothing is downloaded)."""

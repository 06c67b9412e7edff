"""The hypothesis loop over dtypes and devices, and the example database."""

"""Analysis: pure polars functions of the result frames a run directory holds."""

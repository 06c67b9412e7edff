"""The pair under test: each side's call (torch and the JAX twin), the bridge between them, the guard around user code."""

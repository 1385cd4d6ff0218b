"""Training-run and model-version records live here (see the pipeline issue)."""

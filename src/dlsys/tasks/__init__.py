"""One module per experiment family: its recipe, data loading, loss, evaluation and one `run_*` per stage."""

"""Reports built from the pipeline's outputs: a commit comparison (`make compare`) and a results page
(`make report`). Both render offline with matplotlib (no Vega, no network)."""

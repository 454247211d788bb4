"""One file per milestone, each read top to bottom: data, model, loss, algorithm, then the claim."""

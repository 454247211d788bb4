"""How generated samples are measured: Fréchet distances, precision and recall, class coverage, in the
features of the standard Inception-v3 or of the project's own Fashion-MNIST classifier."""

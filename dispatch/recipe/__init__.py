"""What the stage driver checks and arranges around ESPnet's training jobs: pre-flight checks
(GPUs, chunk lengths, changed options), job logs (console filter, error excerpts) and the
steps-per-epoch estimate of ESPnet's chunk iterator."""

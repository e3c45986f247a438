"""Architecture search: mixed ops with binary gates and a differentiable expected-latency loss."""

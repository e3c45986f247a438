"""Scripts that run on the device being profiled; they import nothing of pxnas."""

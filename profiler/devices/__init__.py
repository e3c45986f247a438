"""Measuring on devices: device profiles (profile, the shipped YAML profiles in profiles/),
transports/ and runtimes/ (registries, one module each), the device session and client, the one
measuring loop (schedule), block tables measured (measure) and whole networks measured (check)."""

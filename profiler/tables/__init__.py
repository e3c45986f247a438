"""Latency tables and the records they are made of: one block's measurement (measurement), the raw
samples beside a table (samples), the fingerprint of how it was measured (fingerprint), the table
(table), lookup-table import (lut), and the latency-source protocol with calibration (latency).
Reading a table never imports torch."""

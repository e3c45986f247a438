"""Bounds on what the tools take in: sizes of files, nesting, and the range of a latency.

Each bound sits far beyond anything real and far below what breaks the tools: an input outside one
is refused in one line, never read until memory runs out, never carried into a search as numbers
whose sums overflow.
"""

MIB = 1 << 20

# The largest file each reader takes, by what it reads (the `what` of profiler/records.read_text).
# Each is a thousand times or more its largest real instance; more is read no further.
MAX_FILE_BYTES = {
    "architecture file": 1 * MIB,    # a space name and one op per layer: a few kB
    "space file": 1 * MIB,           # a backbone and its candidates: under 1 kB
    "net.config": 1 * MIB,           # Once-for-All's / ProxylessNAS's: about 20 kB
    "run.config": 1 * MIB,           # a training recipe's settings: under 1 kB
    "device profile": 1 * MIB,       # a few dozen settings: under 1 kB
    "pxnas predictor": 64 * MIB,     # a random forest of a full table: a few hundred kB
    "lookup table": 64 * MIB,        # the published ones hold a few hundred blocks: tens of kB
    "latency table": 256 * MIB,      # ~400 bytes a block: over half a million blocks
    "pxnas samples file": 512 * MIB,  # ~20 bytes a sample: tens of millions of samples
}

# No pxnas file nests deeper than 6 levels (a predictor's trees); the rest is room for free-form
# fields (a fingerprint's facts). Deeper data is hostile, and recursive code would crash on it.
MAX_NESTING = 32

# A block's latency in ms, measured or predicted: 1 ns is a few clock cycles, less than any block
# of a network takes and below what a timer resolves; 1e6 ms (over 16 minutes an inference) is no
# device this toolkit profiles. Within these, a network of thousands of blocks sums to a number
# that float32 (the search's probabilities and their gradients) holds with room to spare.
MIN_BLOCK_MS = 1e-6
MAX_BLOCK_MS = 1e6

# A calibration's scale from the sum of blocks measured alone to the network they make: fusion
# and caches move it by a small factor; a thousandfold either way is a wrong file, not a device.
MIN_SCALE, MAX_SCALE = 1e-3, 1e3

# A random seed: torch's generators take 64 bits, numpy's no negative number; one range serves both.
MAX_SEED = 2**63 - 1

# An IDX file (MNIST's format) of a dataset, decompressed: EMNIST's largest is under 600 MB. A
# header declaring more is refused before its bytes are read (a gzip may inflate without end).
MAX_IDX_BYTES = 4 << 30

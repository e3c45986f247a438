"""parse_output reads benchmark_model's output of every release it may meet on a device.

The fixtures are verbatim excerpts of real outputs published in public repositories (source named
above each); where an excerpt skips lines (the op profiler's tables), two verbatim pieces are joined
and the comment says so.
"""

import pytest

from profiler.devices.runtimes.benchmark_output import BenchmarkOutput, parse_output

# TFLite 1.12 on an AM57xx board: "Running benchmark for N iterations", the "no stats" summary.
# yogeshhegde/processor-sdk-doc @0e1ff78517189489b018adf655d93a0b78db7086,
# source/linux/Foundational_Components/Machine_Learning/tflite.rst (indentation as in the .rst)
TF_1_12 = """\
    STARTING!
    Num runs: [50]
    Inter-run delay (seconds): [-1]
    Num threads: [1]
    Benchmark name: []
    Output prefix: []
    Warmup runs: [1]
    Graph: [mobilenet_v1_1.0_224_quant.tflite]
    Input layers: []
    Input shapes: []
    Use nnapi : [0]
    Loaded model mobilenet_v1_1.0_224_quant.tflite
    resolved reporter
    Initialized session in 4.452ms
    Running benchmark for 1 iterations
    count=1 curr=146161

    Running benchmark for 50 iterations
    count=50 first=137789 curr=137254 min=137079 max=143416 avg=137722 std=896

    Average inference timings in us: Warmup: 146161, Init: 4452, no stats: 137722
"""

# TFLite 1.14/1.15 era on a ZedBoard, with --enable_op_profiling: "at least N iterations and at
# least S seconds", the "no stats" summary, then the op profiler whose own "Timings
# (microseconds): count=50 ..." line must not be taken for the timed phase.
# tflite-soc/benchmarking-models @24cd5401027fab0746a0f3158397f795132222a2,
# mobilenet_v1_1.0_224_quant/2019-11-11-zedboard-2c.txt (lines 1-28, then the last 3 lines)
TF_1_15_PROFILED = """\
STARTING!
Min num runs: [50]
Min runs duration (seconds): [1]
Max runs duration (seconds): [150]
Inter-run delay (seconds): [-1]
Num threads: [2]
Benchmark name: []
Output prefix: []
Min warmup runs: [1]
Min warmup runs duration (seconds): [0.5]
Graph: [../../tensorflow-models/mobilenet-v1/mobilenet_v1_1.0_224_quant.tflite]
Input layers: []
Input shapes: []
Use gpu : [0]
Allow fp16 : [0]
Require full delegation : [0]
Enable op profiling: [1]
Max profiling buffer entries: [1024]
Loaded model ../../tensorflow-models/mobilenet-v1/mobilenet_v1_1.0_224_quant.tflite
resolved reporter
Initialized session in 18.764ms
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=2 first=393500 curr=396574 min=393500 max=396574 avg=395037 std=1537

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=390368 curr=390936 min=389982 max=417669 avg=394183 std=4373

Average inference timings in us: Warmup: 395037, Init: 18764, no stats: 394183
""" + """\
Timings (microseconds): count=50 first=390239 curr=390816 min=389862 max=417544 avg=394059 std=4373
Memory (bytes): count=0
31 nodes observed
"""

# TFLite ~2.3 on x86 (AVX build), op profiling on: the "Inference timings in us: Init: ..., First
# inference: ..." summary, a warm-up of 22 runs, and again the op profiler's count= lines.
# tflite-soc/benchmarking-models @156ca72d610b14a44d78b296d65b9dfd5da347cc,
# iccd2020/tmp-log/avx/mobilenet-v1-float_1t.log (lines 1-41, then the op profiler's last lines)
TF_2_3_PROFILED = """\
STARTING!
Duplicate flags: num_threads
Min num runs: [50]
Min runs duration (seconds): [1]
Max runs duration (seconds): [150]
Inter-run delay (seconds): [-1]
Num threads: [1]
Benchmark name: []
Output prefix: []
Min warmup runs: [1]
Min warmup runs duration (seconds): [0.5]
Graph: [/working_dir/tensorflow-models/iccd2020/mobilenet-v1-float/mobilenet_v1_1.0_224.tflite]
Input layers: []
Input shapes: []
Input value ranges: []
Input layer values files: []
Allow fp16 : [0]
Require full delegation : [0]
Enable op profiling: [1]
Max profiling buffer entries: [1024]
CSV File to export profiling data to: []
Enable platform-wide tracing: [0]
#threads used for CPU inference: [1]
Max number of delegated partitions : [0]
Min nodes per partition : [0]
External delegate path : []
External delegate options : []
Use gpu : [0]
Use xnnpack : [0]
Loaded model /working_dir/tensorflow-models/iccd2020/mobilenet-v1-float/mobilenet_v1_1.0_224.tflite
The input model file size (MB): 16.9008
Initialized session in 0.277ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=22 first=26493 curr=22441 min=22358 max=26493 avg=22990.7 std=895

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=22852 curr=22439 min=22343 max=23656 avg=22549.2 std=238

Inference timings in us: Init: 277, First inference: 26493, Warmup (avg): 22990.7, Inference (avg): 22549.2
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Peak memory footprint (MB): init=4.63281 overall=27.1484
""" + """\
Timings (microseconds): count=50 first=22850 curr=22433 min=22341 max=23652 avg=22545.7 std=237
Memory (bytes): count=0
31 nodes observed
"""

# TFLite 2.8-2.21 (meta-tensorflow-lite on qemuriscv64): scientific notation in avg= and in the
# summary, a one-run warm-up printed as "count=1 curr=...".
# NobuoTsukamoto/meta-tensorflow-lite @0f6dac408896487a6302d8fe81299dc942d5697b,
# doc/tensorflow-lite-benchmark.md (the output block up to the op profiler's tables)
TF_2_X_SCIENTIFIC = """\
STARTING!
Log parameter values verbosely: [0]
Num threads: [4]
Graph: [./mobilenet_v1_1.0_224.tflite]
Enable op profiling: [1]
#threads used for CPU inference: [4]
Loaded model ./mobilenet_v1_1.0_224.tflite
The input model file size (MB): 16.9008
Initialized session in 17.187ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=1 curr=3512391

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, Inference (avg): 2.95034e+06
Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
Memory footprint delta from the start of the tool (MB): init=4.21094 overall=46.0859
"""

# TFLite 2.20 / LiteRT on an AM62x board: "INFO: " on every line, p5/median/p95 on the count=
# lines. TexasInstruments/processor-sdk-doc @b04bc774e6d79ff4e9b2805cf150025f8082b716,
# source/linux/Foundational_Components/Machine_Learning/tflite.rst (CPU run; indentation as in .rst)
LITERT_2_20 = """\
   INFO: STARTING!
   INFO: Log parameter values verbosely: [0]
   INFO: Graph: [/usr/share/oob-demo-assets/models/ssd_mobilenet_v2_coco.tflite]
   INFO: Signature to run: []
   INFO: Use xnnpack: [0]
   INFO: Loaded model /usr/share/oob-demo-assets/models/ssd_mobilenet_v2_coco.tflite
   INFO: The input model file size (MB): 67.3128
   INFO: Initialized session in 5.579ms.
   INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
   INFO: count=1 curr=1357602 p5=1357602 median=1357602 p95=1357602

   INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
   INFO: count=50 first=1249964 curr=1240143 min=1238588 max=1252566 avg=1.24027e+06 std=2565 p5=1238753 median=1239807 p95=1247415

   INFO: Inference timings in us: Init: 5579, First inference: 1357602, Warmup (avg): 1.3576e+06, Inference (avg): 1.24027e+06
   INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
   INFO: Memory footprint delta from the start of the tool (MB): init=6.36328 overall=109.832
"""

# The same document's XNNPACK run: delegate lines in between, no blank lines after count= lines.
LITERT_2_20_XNNPACK = """\
   INFO: STARTING!
   INFO: Log parameter values verbosely: [0]
   INFO: Graph: [/usr/share/oob-demo-assets/models/ssd_mobilenet_v2_coco.tflite]
   INFO: Signature to run: []
   INFO: Use xnnpack: [1]
   INFO: Loaded model /usr/share/oob-demo-assets/models/ssd_mobilenet_v2_coco.tflite
   INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
   INFO: XNNPACK delegate created.
   INFO: Explicitly applied XNNPACK delegate, and the model graph will be partially executed by the delegate w/ 1 delegate kernels.
   INFO: The input model file size (MB): 67.3128
   INFO: Initialized session in 614.333ms.
   INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
   INFO: count=1 curr=905463 p5=905463 median=905463 p95=905463
   INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
   INFO: count=50 first=900416 curr=898333 min=898007 max=906121 avg=899641 std=1549 p5=898333 median=899281 p95=904305
   INFO: Inference timings in us: Init: 614333, First inference: 905463, Warmup (avg): 905463, Inference (avg): 899641
   INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
   INFO: Memory footprint delta from the start of the tool (MB): init=146.363 overall=150.141
"""

CASES = {
    "tf-1.12": (TF_1_12, BenchmarkOutput(count=50, avg_us=137722, std_us=896, min_us=137079,
                                         max_us=143416, init_us=4452, warmup_avg_us=146161,
                                         warmup_count=1)),
    "tf-1.15-profiled": (TF_1_15_PROFILED, BenchmarkOutput(
        count=50, avg_us=394183, std_us=4373, min_us=389982, max_us=417669, init_us=18764,
        warmup_avg_us=395037, warmup_count=2)),
    "tf-2.3-profiled": (TF_2_3_PROFILED, BenchmarkOutput(
        count=50, avg_us=22549.2, std_us=238, min_us=22343, max_us=23656, init_us=277,
        warmup_avg_us=22990.7, warmup_count=22)),
    "tf-2.x-scientific": (TF_2_X_SCIENTIFIC, BenchmarkOutput(
        count=50, avg_us=2.95034e6, std_us=109798, min_us=2727568, max_us=3189954, init_us=17187,
        warmup_avg_us=3.51239e6, warmup_count=1)),
    "litert-2.20": (LITERT_2_20, BenchmarkOutput(
        count=50, avg_us=1.24027e6, std_us=2565, min_us=1238588, max_us=1252566, init_us=5579,
        warmup_avg_us=1.3576e6, warmup_count=1)),
    "litert-2.20-xnnpack": (LITERT_2_20_XNNPACK, BenchmarkOutput(
        count=50, avg_us=899641, std_us=1549, min_us=898007, max_us=906121, init_us=614333,
        warmup_avg_us=905463, warmup_count=1)),
}


@pytest.mark.parametrize("name", CASES)
def test_verbatim_outputs_of_each_release(name):
    text, expected = CASES[name]
    assert parse_output(text) == expected


def test_avg_ms():
    assert parse_output(TF_1_12).avg_ms == pytest.approx(137.722)


@pytest.mark.parametrize("prefix", [
    "I0129 10:11:12.345678  1234 benchmark_model.cc:123] ",   # glog
    "07-14 13:14:52.097 22838 22838 I tflite  : ",             # logcat -v threadtime
    "2017-11-27 08:56:35.518009: I tensorflow/lite/tools/benchmark/benchmark_model.cc:324] ",
])
def test_logger_prefixes(prefix):
    # The verbatim lines of one release behind the prefixes other loggers put on them.
    text = "".join(prefix + line.strip() + "\n" for line in TF_2_X_SCIENTIFIC.splitlines())
    assert parse_output(text) == CASES["tf-2.x-scientific"][1]


def test_without_summary_the_last_count_line_is_used():
    lines = [ln for ln in TF_1_12.splitlines() if "timings in us" not in ln]
    out = parse_output("\n".join(lines))
    assert (out.count, out.avg_us, out.std_us, out.init_us) == (50, 137722, 896, None)
    assert out.warmup_avg_us == 146161   # from the warm-up's count=1 curr=... line


def test_a_timed_phase_whose_runs_all_took_the_same_time():
    text = ("count=1 curr=900\n\ncount=20 curr=850(all same) p5=850 median=850 p95=850\n\n"
            "Inference timings in us: Init: 10, First inference: 900, Warmup (avg): 900, "
            "Inference (avg): 850\n")
    out = parse_output(text)
    assert (out.count, out.avg_us, out.std_us, out.min_us, out.max_us) == (20, 850, 0, 850, 850)


@pytest.mark.parametrize("text, says", [
    ("", "printed nothing"),
    ("   \n\n", "printed nothing"),
    ("Segmentation fault (core dumped)\n", "no benchmark statistics"),
    ("\x00\x01 garbage count=abc avg=\n", "no benchmark statistics"),
    ("INFO: STARTING!\nINFO: Graph: [/data/local/tmp/x.tflite]\n"
     "ERROR: Could not open '/data/local/tmp/x.tflite'.\n"
     "ERROR: Failed to mmap model /data/local/tmp/x.tflite\nERROR: Benchmarking failed.\n",
     "ERROR: Could not open '/data/local/tmp/x.tflite'."),
    # The warm-up finished and then the tool died: no timed phase to report.
    ("\n".join(TF_1_12.splitlines()[:16]) + "\nERROR: Node number 3 (CONV_2D) failed to invoke.\n",
     "ends after the warm-up"),
    ("Inference timings in us: Init: 5, First inference: 7, Warmup (avg): 7, Inference (avg): 6\n",
     "no 'count=' line"),
    ("count=0\n\ncount=0\n\nInference timings in us: Init: 5, First inference: 0, "
     "Warmup (avg): -nan, Inference (avg): -nan\n", "ran no inference"),
])
def test_outputs_without_a_timed_phase_are_refused_in_one_line(text, says):
    with pytest.raises(ValueError) as caught:
        parse_output(text)
    message = str(caught.value)
    assert says in message and "\n" not in message


def test_an_error_line_is_quoted_first():
    text = "ERROR: first thing\nERROR: second thing\n"
    with pytest.raises(ValueError, match="it said: ERROR: first thing$"):
        parse_output(text)

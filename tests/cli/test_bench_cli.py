"""``ember bench``: registered, parses the suite's options, finds bench/run.py in the checkout."""

from ember.cli import bench, build_parser


def test_bench_subcommand_parses():
    args = build_parser().parse_args(["bench", "--only", "lenet4,import", "--quick", "--reps", "3"])
    assert args.command == "bench" and args.only == "lenet4,import" and args.quick
    assert args.reps == 3 and args.threads == 2 and not args.no_memory


def test_bench_finds_the_suite():
    suite = bench._load_suite()
    assert {"lenet4", "lenet64", "mlp128", "lstm32", "resnet64", "gru_char"} <= set(suite.WORKLOADS)
    _, _, opt, clip = suite.WORKLOADS["gru_char"]  # examples/char_lstm.py's defaults
    assert opt == {"lr": 3e-3} and clip == 5.0

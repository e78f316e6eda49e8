"""The release build the benchmark scripts run and the models `peers.sh` makes for them, and a
clear stop when either is missing."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMODEL = os.path.join(ROOT, ".build", "release", "fmodel")
# Where the scripts build and keep their models (git-ignored).
OUT = os.path.join(ROOT, "Benchmarks", "out")
BUILD = "swift build -c release --static-swift-stdlib"


def require_fmodel():
    """FMODEL, or an exit that names the command building it."""
    if not os.access(FMODEL, os.X_OK):
        sys.exit(f"no release build at {FMODEL}: run {BUILD}")
    return FMODEL


def require_models(*paths):
    """A stop naming those of `paths` that are missing (models and conversions `peers.sh` makes,
    or a model the user named), unless every one is there."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        sys.exit(f"missing {', '.join(missing)} (Benchmarks/peers.sh makes the full-size models and their conversions)")

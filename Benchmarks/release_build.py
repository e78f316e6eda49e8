"""The release build the benchmark scripts run, and a clear stop when it is missing."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FMODEL = os.path.join(ROOT, ".build", "release", "fmodel")
BUILD = "swift build -c release --static-swift-stdlib"


def require_fmodel():
    """FMODEL, or an exit that names the command building it."""
    if not os.access(FMODEL, os.X_OK):
        sys.exit(f"no release build at {FMODEL}: run {BUILD}")
    return FMODEL
